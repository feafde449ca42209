"""vision: what the detecting, tracking and counting stages share: detectors, the tracker,
geometry, counters, drawing, models.

Results travel in the frame packet they belong to (vflow-packet(5), "Objects"):

    "objects": [{"box": [x1, y1, x2, y2], "score": 0.91, "class": 0, "label": "person"}, ...]

box: pixels of the frame as it is in that packet (floats; x1, y1 the top-left corner).
`track` adds "id" (int >= 1) and "velocity" [vx, vy] to the objects it follows; `line` and
`zone` add their running counts under "lines" and "zones".
"""
