"""Confidence maps: the probabilistic symmetry prior's sigma, sigma'."""

EPS = 1e-7


def split_sigmas(sigma_l1, sigma_percl):
  """ConfNet outputs -> the reference's four sigma maps.

  Args:
    sigma_l1: a tensor of shape `[B, H, W, 2]`.
    sigma_percl: a tensor of shape `[B, H/4, W/4, 2]`.

  Returns:
    dict with `conf_sigma_l1`, `conf_sigma_l1_flip` `[B, H, W, 1]` and
    `conf_sigma_percl`, `conf_sigma_percl_flip` `[B, H/4, W/4, 1]`.
  """
  return {
      'conf_sigma_l1': sigma_l1[..., :1],
      'conf_sigma_l1_flip': sigma_l1[..., 1:],
      'conf_sigma_percl': sigma_percl[..., :1],
      'conf_sigma_percl_flip': sigma_percl[..., 1:],
  }


def confidence_map(sigma):
  """Sigma -> a [0, 1] confidence image for display: 1 / (1 + sigma)."""
  return 1.0 / (1.0 + sigma + EPS)
