"""tfunsup3d-quickstart: the main job, end to end on CPU.

  1. generate a synthetic face-like (or, with `--category=car`, car-like)
     set with ground-truth depth (`tfunsup3d-synth`, skipped when the data
     is already there),
  2. train the reduced model of configs/quickstart.yml (`tfunsup3d-train`,
     resuming a previous run),
  3. test it on the test split with depth scores (`tfunsup3d-test`) next to
     the constant and average-depth baselines computed on the same images,
  4. export a SavedModel for TF Serving (`tfunsup3d-export`).

Usage:
  tfunsup3d-quickstart --config=configs/quickstart.yml [--KEY=VALUE ...]
  tfunsup3d-quickstart --config=configs/quickstart.yml --num_train=64 \
      --num_epochs=1 --max_steps_per_epoch=2      # a smoke run (CI)
  tfunsup3d-quickstart --config=configs/synthcar.yml --category=car

Writes `<checkpoint_dir>/quickstart_summary.json` with the scores.
Ctrl-C (or SIGTERM) during training saves a checkpoint after the step in
progress and exits with 130 (143); the same command resumes from it.
"""

import json
import os

from absl import flags

from tfunsup3d import config as config_lib
from tfunsup3d.data import synth_params
from tfunsup3d.tools import flags as tool_flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_integer('num_train', 6000, 'Synthetic training images.')
  flags.DEFINE_integer('num_val', 300, 'Synthetic validation images.')
  flags.DEFINE_integer('num_test', 300, 'Synthetic test images.')
  flags.DEFINE_bool('export', True, 'Export a SavedModel at the end.')
  flags.DEFINE_enum('category', 'face', list(synth_params.CATEGORIES),
                    'The synthetic objects of step 1 (tfunsup3d-synth '
                    '--category): face, or car with '
                    '--config=configs/synthcar.yml.')


def _data_present(cfg) -> bool:
  from tfunsup3d.data import images  # pylint: disable=g-import-not-at-top
  try:
    for split in ('train', 'val', 'test'):
      images.list_split(cfg, split)
  except (FileNotFoundError, ValueError):
    return False
  return True


def _check_replaceable(cfg, counts):
  """Refuses to replace a split directory that holds data not written by
  tfunsup3d-synth (no factors.npz): it may be the user's."""
  for split, n in counts.items():
    path = os.path.join(cfg.train_val_data_dir, split)
    if os.path.exists(path) and not os.path.isdir(path):
      raise tool_flags.UserError(f'{path} is a file, not a directory: set '
                                 'train_val_data_dir to a data set root.')
    if (n and os.path.isdir(path) and os.listdir(path) and
        not os.path.isfile(os.path.join(path, 'factors.npz'))):
      raise tool_flags.UserError(
          f'{path} holds files that tfunsup3d-synth did not write, and the '
          'data set there is incomplete: quickstart will not replace them. '
          'Set train_val_data_dir to another directory.')


def _data_step(cfg, counts, options):
  """Step 1: checks what training needs, then writes or reuses the data
  (`options`: the generator's `SynthOptions`)."""
  # pylint: disable=g-import-not-at-top
  from tfunsup3d import saving
  from tfunsup3d.data import synth
  from tfunsup3d.train import loop
  config_lib.check(cfg)  # Before hours of data generation.
  if cfg.num_epochs == 0 and not (os.path.isdir(cfg.checkpoint_dir) and
                                  saving.checkpoint_candidates(
                                      cfg.checkpoint_dir)):
    raise tool_flags.UserError(
        f'num_epochs=0 trains nothing, and {cfg.checkpoint_dir} holds no '
        'checkpoint to test and export: pass --num_epochs=1 or more.')
  present = _data_present(cfg)
  if not present:
    _check_replaceable(cfg, counts)
  loop.check_writable(cfg.checkpoint_dir, 'checkpoint_dir')
  print(f'[1/4] data: {cfg.train_val_data_dir}')
  if present:
    print('      already there, reused (delete it to regenerate)')
    changed = synth.changed_options(os.path.join(cfg.train_val_data_dir,
                                                 'train'), options)
    if changed:
      print('      note: written with other generator options than '
            'today\'s defaults: ' + ', '.join(
                f'{k} {old} (now {new})' for k, (old, new) in changed.items()))
  else:
    synth.write_dataset(cfg.train_val_data_dir, counts, cfg, seed=cfg.seed,
                        overwrite=True, options=options)


def main(cfg: config_lib.Config) -> int:
  # pylint: disable=g-import-not-at-top
  from tfunsup3d.train import evaluate
  cfg = cfg.resolved()
  if cfg.test_data_dir is None:
    cfg.test_data_dir = os.path.join(cfg.train_val_data_dir, 'test')
  counts = {'train': FLAGS.num_train, 'val': FLAGS.num_val,
            'test': FLAGS.num_test}
  _data_step(cfg, counts, synth_params.SynthOptions.for_category(
      FLAGS.category))
  print(f'[2/4] training -> {cfg.checkpoint_dir}')
  result, status = tool_flags.train_stoppable(cfg, 'quickstart')
  if status:
    return status
  print(f'      {result["epoch"]} epochs, {result["step"]} steps')
  print('[3/4] testing')
  tested = evaluate.test(cfg, write_images=True)
  summary = {'checkpoint': tested['checkpoint'],
             'test_result_dir': tested['result_dir'],
             'model': tested['summary']}
  from tfunsup3d import baselines  # pylint: disable=g-import-not-at-top
  base = baselines.split_baselines(cfg)
  for name, scores in base.items():
    if isinstance(scores, dict) and 'side_mean' in scores:
      summary[name] = (f'SIDE (x1e-2): {scores["side_mean"]:.3f} ± '
                       f'{scores["side_std"]:.3f}, MAD (deg): '
                       f'{scores["mad_mean"]:.2f} ± {scores["mad_std"]:.2f}')
  for key in ('model', 'null', 'average'):
    if key in summary:
      print(f'      {key:8s} {summary[key]}')
  if FLAGS.export:
    print('[4/4] export')
    from tfunsup3d.export import saved_model
    from tfunsup3d.model import Unsup3D
    model = Unsup3D.from_checkpoint(cfg.checkpoint_dir)
    summary['saved_model'] = saved_model.export_saved_model(
        model, cfg.export_dir, source=tested['checkpoint'])
    print(f'      {summary["saved_model"]}')
  path = os.path.join(cfg.checkpoint_dir, 'quickstart_summary.json')
  with open(path, 'w', encoding='utf-8') as f:
    json.dump(summary, f, indent=1)
  print(f'done: {path}')
  return 0


def run() -> None:
  define_flags()
  tool_flags.run_main(main, 'quickstart')


if __name__ == '__main__':
  run()
