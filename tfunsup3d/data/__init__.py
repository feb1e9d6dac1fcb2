"""Input pipelines: image collections, ground-truth depth pairs, synthetic.

Nothing is imported here, so that the light modules (`synth_params`, the
console scripts' flag definitions) load without TensorFlow: import
`tfunsup3d.data.images` for the pipelines."""
