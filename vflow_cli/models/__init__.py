"""models: files vflow ships (the YOLOX-Nano detector), read with importlib.resources."""
