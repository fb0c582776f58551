"""Models: one folder per model, each registering itself (``register_model`` in its ``__init__.py``);
``components/`` holds the parts several models share. The registry imports every folder here."""
