from .blocks import ConvDownStack, ConvUpStack, LatentDecoder, LatentEncoder, init_dcgan_weights

__all__ = ["ConvDownStack", "ConvUpStack", "LatentDecoder", "LatentEncoder", "init_dcgan_weights"]
