"""The networks of Unsup3D (Keras 3, NHWC) and the VGG16 perceptual features."""

from tfunsup3d.networks.conf_net import ConfNet
from tfunsup3d.networks.ed_deconv import EDDeconv
from tfunsup3d.networks.encoder import Encoder
from tfunsup3d.networks.vgg import VGG16Features

__all__ = [
    'ConfNet',
    'EDDeconv',
    'Encoder',
    'VGG16Features',
]
