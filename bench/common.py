"""Shared helpers of the benchmarks: timing, peak memory, JSON lines.

Timing: `measure(fn)` calls `fn` once (first call: tracing and XLA
compilation, reported as `first_s`), `warmup` more times, then `repeats`
times, and reports the median and min of those. `fn` must return tensors;
they are fetched to host (`.numpy()`) inside the timed region so that
asynchronous execution cannot hide work.

Peak memory without psutil/tracemalloc: Linux's VmHWM (peak resident set)
from /proc/self/status, reset before each measurement by writing "5" to
/proc/self/clear_refs (Linux >= 4.0). Where that is unavailable the
process-lifetime `ru_maxrss` of resource.getrusage is reported instead
(`peak_rss_kind: "lifetime"`), which only ever grows.
"""

import json
import os
import platform
import resource
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional

import tensorflow as tf


def _status_kib(field: str) -> Optional[int]:
  try:
    with open('/proc/self/status', encoding='ascii') as f:
      for line in f:
        if line.startswith(field + ':'):
          return int(line.split()[1])
  except OSError:
    return None
  return None


def reset_peak_rss() -> bool:
  """Resets the kernel's peak-RSS counter of this process; False if not
  possible (then `peak_rss_mib` is the lifetime peak)."""
  try:
    with open('/proc/self/clear_refs', 'w', encoding='ascii') as f:
      f.write('5')
    return True
  except OSError:
    return False


def peak_rss_mib() -> float:
  """Peak resident set size in MiB since the last `reset_peak_rss`."""
  hwm = _status_kib('VmHWM')
  if hwm is None:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib / 1024.0
  return hwm / 1024.0


def rss_mib() -> float:
  rss = _status_kib('VmRSS')
  return (rss or 0) / 1024.0


def _fetch(result):
  """Brings every tensor in `result` to host, so its work is finished."""
  for t in tf.nest.flatten(result):
    if hasattr(t, 'numpy'):
      t.numpy()


def measure(fn: Callable[[], Any], repeats: int = 5,
            warmup: int = 1) -> Dict[str, Any]:
  """Times `fn()`: first call, warm-up, then the median of `repeats` calls.

  Returns:
    dict with first_s, median_s, min_s, times_s, peak_rss_mib (during the
    timed calls and warm-up, see module docstring), rss_before_mib.
  """
  rss_before = rss_mib()
  exact = reset_peak_rss()
  start = time.perf_counter()
  _fetch(fn())
  first = time.perf_counter() - start
  for _ in range(warmup):
    _fetch(fn())
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    _fetch(fn())
    times.append(time.perf_counter() - start)
  return {
      'first_s': round(first, 4),
      'median_s': round(statistics.median(times), 4),
      'min_s': round(min(times), 4),
      'times_s': [round(t, 4) for t in times],
      'peak_rss_mib': round(peak_rss_mib(), 1),
      'peak_rss_kind': 'since_reset' if exact else 'lifetime',
      'rss_before_mib': round(rss_before, 1),
  }


def load_average() -> List[float]:
  try:
    return [round(x, 2) for x in os.getloadavg()]
  except OSError:
    return []


def environment() -> Dict[str, Any]:
  """Where the numbers come from (printed once per run)."""
  gpus = tf.config.list_physical_devices('GPU')
  threading = tf.config.threading  # 0 = TF's default (all cores)
  return {
      'event': 'environment',
      'python': platform.python_version(),
      'tensorflow': tf.__version__,
      'cpu_count': os.cpu_count(),
      'sched_affinity': (len(os.sched_getaffinity(0))
                         if hasattr(os, 'sched_getaffinity') else None),
      'gpus': [g.name for g in gpus],
      'machine': platform.machine(),
      'load_average': load_average(),
      'intra_op_threads': threading.get_intra_op_parallelism_threads(),
      'inter_op_threads': threading.get_inter_op_parallelism_threads(),
  }


def emit(record: Dict[str, Any]) -> None:
  """Prints one JSON object on one line (and flushes)."""
  record = dict(record)
  record.setdefault('load_average', load_average())
  sys.stdout.write(json.dumps(record, sort_keys=False) + '\n')
  sys.stdout.flush()


def write_results(out_dir: str, name: str, result: Dict[str, Any],
                  markdown: str) -> None:
  """Writes `<out_dir>/<name>.json` (atomically: a kill never leaves half a
  file) and `<out_dir>/<name>.md`."""
  os.makedirs(out_dir, exist_ok=True)
  base = os.path.join(out_dir, name)
  with open(base + '.json.tmp', 'w', encoding='utf-8') as f:
    json.dump(result, f, indent=1)
  os.replace(base + '.json.tmp', base + '.json')
  with open(base + '.md', 'w', encoding='utf-8') as f:
    f.write(markdown)


def parse_list(text: str) -> List[str]:
  return [t.strip() for t in text.split(',') if t.strip()]


def parse_xla(text: str) -> List[bool]:
  """'on,off' -> [True, False]."""
  values = []
  for item in parse_list(text):
    if item.lower() in ('on', 'true', '1', 'xla'):
      values.append(True)
    elif item.lower() in ('off', 'false', '0', 'none'):
      values.append(False)
    else:
      raise ValueError(f'--xla takes on/off values. Received: {item!r}')
  return values


def quiet_tensorflow() -> None:
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  tf.get_logger().setLevel('ERROR')
