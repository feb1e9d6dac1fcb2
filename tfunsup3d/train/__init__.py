"""Training: the task (model + optimisers + steps), checkpoints, the loop.

  task.py         Unsup3DTask: train_step / eval_step as tf.functions
  optimizers.py   TorchAdam (torch.optim.Adam semantics), one per network
  checkpoints.py  tf.train.Checkpoint + CheckpointManager, resume fallback
  summaries.py    TensorBoard scalars, histograms and image grids
  loop.py         train(cfg): the generic epoch loop
  evaluate.py     the test split: per-image results and eval_scores.txt
"""
