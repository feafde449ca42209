"""vflow: Unix-style video stream processing from the shell."""

__version__ = "0.1.0"
