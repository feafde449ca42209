"""Quality checks of the detector and the tracker: people labelled by hand on frames of the
PETS 2009 pedestrian clip (vtest.avi), and MOTChallenge ground truth with noisy detections."""
