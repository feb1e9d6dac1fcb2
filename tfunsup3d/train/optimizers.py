"""One PyTorch-equivalent Adam per network (docs/method.md §4).

The reference trains each network with `torch.optim.Adam(lr, betas=(0.9,
0.999), eps=1e-8, weight_decay=5e-4)`. Two details differ from
`keras.optimizers.Adam` and are reproduced by `TorchAdam`:
  * weight decay is L2 added to the gradient before the moments
    (g <- g + wd * w), not the decoupled AdamW decay Keras applies;
  * epsilon is added to the bias-corrected sqrt(v) (torch), not to the raw
    sqrt(v) (Keras' "epsilon hat").

With t = iterations + 1:
  g <- g + wd * w
  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
  w <- w - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
"""

from typing import Dict, Optional, Sequence

import keras
import tensorflow as tf

from tfunsup3d import losses


@keras.saving.register_keras_serializable(package='tfunsup3d')
class TorchAdam(keras.optimizers.Adam):
  """Adam with `torch.optim.Adam` semantics (L2 decay, torch epsilon).

  Args:
    learning_rate: float. Defaults to 1e-4.
    beta_1: float. Defaults to 0.9.
    beta_2: float. Defaults to 0.999.
    epsilon: float, added to the bias-corrected sqrt(v). Defaults to 1e-8.
    l2_weight_decay: float, PyTorch's `weight_decay` (L2 added to the
      gradient). Defaults to 0.
    lr_decay: None (a constant learning rate, as the reference's) or
      (hold_steps, ramp_steps, final_scale): the learning rate times 1 for
      the first `hold_steps` steps (`iterations`), then linearly to
      `final_scale` over `ramp_steps` steps, then `final_scale`.
    **kwargs: passed to `keras.optimizers.Adam` (not `weight_decay`, which
      is Keras' decoupled decay: use `l2_weight_decay`).

  Example:
  ```python
  opt = TorchAdam(1e-4, l2_weight_decay=5e-4)
  opt.build(net.trainable_variables)
  apply_gradients(opt, grads, net.trainable_variables)
  ```
  """

  def __init__(self, learning_rate: float = 1e-4, beta_1: float = 0.9,
               beta_2: float = 0.999, epsilon: float = 1e-8,
               l2_weight_decay: float = 0.0,
               lr_decay: Optional[Sequence[float]] = None, **kwargs):
    if kwargs.get('weight_decay'):
      raise ValueError('TorchAdam: use l2_weight_decay (PyTorch semantics), '
                       'not weight_decay (decoupled). Received: weight_decay='
                       f'{kwargs["weight_decay"]}')
    kwargs.pop('weight_decay', None)
    if l2_weight_decay < 0:
      raise ValueError('l2_weight_decay must be >= 0. Received: '
                       f'l2_weight_decay={l2_weight_decay}')
    super().__init__(learning_rate=learning_rate, beta_1=beta_1,
                     beta_2=beta_2, epsilon=epsilon, amsgrad=False, **kwargs)
    self.l2_weight_decay = float(l2_weight_decay)
    self.lr_decay = None if lr_decay is None else [float(v) for v in lr_decay]

  def _distributed_tf_update_step(self, distribution, grads_and_vars,
                                  learning_rate):
    # Keras' loop over the variables, with the step's scalars (lr, the beta
    # powers, torch's epsilon) made once per apply and dtype instead of once
    # per variable: ~8 fewer ops per variable to trace (the tiny model's
    # step: 1,620 of 13,073 graph nodes). Should Keras rename this method,
    # `update_step` below still makes the same update, per variable.
    scalars = {}

    def update(variable, gradient, lr):
      return self._update(gradient, variable, lr, scalars)

    for gradient, variable in grads_and_vars:
      distribution.extended.update(variable, update,
                                   args=(gradient, learning_rate), group=False)

  def _step_scalars(self, dtype, learning_rate, cache: Dict
                    ) -> Dict[str, tf.Tensor]:
    if dtype not in cache:
      t = tf.cast(self.iterations + 1, dtype)
      b1 = tf.cast(self.beta_1, dtype)
      b2 = tf.cast(self.beta_2, dtype)
      b2_power = tf.pow(b2, t)
      lr = tf.cast(learning_rate, dtype)
      if self.lr_decay:
        hold, ramp, final = self.lr_decay
        lr *= tf.cast(losses.scheduled_weight(self.iterations, 1.0, final,
                                              hold, ramp), dtype)
      cache[dtype] = dict(
          beta1_power=tf.pow(b1, t), beta2_power=b2_power,
          lr=lr, beta1=b1, beta2=b2,
          epsilon=tf.cast(self.epsilon, dtype) * tf.sqrt(1.0 - b2_power))
    return cache[dtype]

  def update_step(self, gradient, variable, learning_rate):
    return self._update(gradient, variable, learning_rate, {})

  def _update(self, gradient, variable, learning_rate, cache: Dict):
    # torch: w -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps), ci = 1 - bi^t,
    # is TF's fused Adam, w -= lr sqrt(c2) / c1 * m / (sqrt(v) + eps_hat),
    # with eps_hat = eps * sqrt(c2): one op per variable (fast to trace).
    dtype = variable.dtype
    gradient = tf.cast(gradient, dtype)
    if self.l2_weight_decay:
      # Scaled once the gradient exists: wd * w depends on nothing else, so
      # TF's executor would otherwise compute it for every variable at the
      # start of the step and hold the copies through the backward pass
      # (0.15 GB of the full-size step's peak).
      with tf.control_dependencies([gradient]):
        decay = tf.cast(self.l2_weight_decay, dtype) * tf.convert_to_tensor(
            variable)
      gradient += decay
    index = self._get_variable_index(variable)
    m, v = self._momentums[index], self._velocities[index]
    tf.raw_ops.ResourceApplyAdam(
        var=variable.handle, m=m.handle, v=v.handle, grad=gradient,
        use_locking=False, use_nesterov=False,
        **self._step_scalars(dtype, learning_rate, cache))

  def get_config(self):
    config = super().get_config()
    config.pop('amsgrad', None)
    config.pop('weight_decay', None)
    config['l2_weight_decay'] = self.l2_weight_decay
    config['lr_decay'] = self.lr_decay
    return config


def network_lr(cfg, name: str) -> float:
  """The Adam learning rate of network `name` ('netD', ...): `cfg.lr`, times
  view_lr_scale for netV, light_lr_scale for netL, depth_lr_scale for netD."""
  scales = {'netV': cfg.view_lr_scale, 'netL': cfg.light_lr_scale,
            'netD': cfg.depth_lr_scale}
  return cfg.lr * scales.get(name, 1.0)


def build_optimizers(networks: Dict[str, keras.Model], cfg
                     ) -> Dict[str, TorchAdam]:
  """One built `TorchAdam` per network, keyed like the networks.

  Args:
    networks: {'netD': net, ...} (`Unsup3D.networks`).
    cfg: `Config` (weight_decay; each network's lr is `network_lr`).

  Returns:
    {'netD': optimizer, ...}; each optimizer is built on all its network's
    trainable variables (slots exist before a checkpoint restore).
  """
  optimizers = {}
  for name, net in networks.items():
    opt = TorchAdam(network_lr(cfg, name), 0.9, 0.999, 1e-8, cfg.weight_decay,
                    lr_decay=cfg.lr_decay,
                    name=name.replace('net', 'optimizer'))
    opt.build(net.trainable_variables)
    optimizers[name] = opt
  return optimizers


def apply_gradients(optimizer: keras.optimizers.Optimizer,
                    grads: Sequence[Optional[tf.Tensor]],
                    variables: Sequence[tf.Variable]) -> int:
  """Applies the non-None gradients (no Keras "gradients do not exist"
  warning); variables without a gradient (e.g. netC's perceptual head when
  lam_perc = 0) keep their value and Adam state, as in PyTorch.

  Returns:
    The number of variables updated (static).
  """
  pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
  if pairs:
    optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
  return len(pairs)
