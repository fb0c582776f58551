from .blocks import ConvDownStack, ConvUpStack, init_dcgan_weights

__all__ = ["ConvDownStack", "ConvUpStack", "init_dcgan_weights"]
