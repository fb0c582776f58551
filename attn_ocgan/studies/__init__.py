"""One module per study on trained checkpoints: classification, localisation, Grad-CAM, model figures."""
