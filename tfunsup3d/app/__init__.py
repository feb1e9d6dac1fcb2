"""The web app: 3D from one photo in the browser (`tfunsup3d-app`).

`process` turns one photo into the demo's outputs (no Gradio there; the
work is `tfunsup3d.demo.runner.Demo`); `page` lays them out in a local Gradio
page. `examples/` holds three 64x64 synthetic faces written by

  tfunsup3d-synth --config=configs/quickstart.yml --out_dir=DIR \
      --num_train=0 --num_val=0 --num_test=3 --seed=0

(DIR/test/image/00000{0,1,2}_image.png).
"""
