"""The networks of Unsup3D (Keras 3, NHWC) and the VGG16 perceptual features."""

from tfunsup3d.networks.conf_net import ConfNet
from tfunsup3d.networks.ed_deconv import EDDeconv
from tfunsup3d.networks.encoder import Encoder
from tfunsup3d.networks.vgg import VGG16Features
from tfunsup3d.networks.vgg import load_vgg16_weights

__all__ = [
    'ConfNet',
    'EDDeconv',
    'Encoder',
    'VGG16Features',
    'load_vgg16_weights',
]
