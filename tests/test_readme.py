"""The front door is real: README's commands and every docs link.

Every fenced shell block (bash, sh, shell, console) of README.md and
docs/*.md is read as commands (continuation lines joined, comments dropped,
`&&` / `;` / `|` split, leading VAR=value assignments skipped), and each
command that runs this project is checked:

  * `tfunsup3d-NAME` (also `.venv/bin/tfunsup3d-NAME`) is a console script of
    pyproject.toml's [project.scripts], and each `--flag` (or `--noflag` of a
    boolean) is a flag that script defines when it runs: its own `--helpxml`
    lists them (config keys, --config, --print_config, absl's own and the
    script's own). A script not in pyproject.toml yet skips with its reason.
  * `python -m MODULE`: a module of the repository (each `--flag` an argparse
    option of it or of a repository module it imports, found in the source
    without importing it) or an installed one.
  * `./FILE` or `python FILE.py`: the file exists; a shell script that execs a
    console script has its flags checked against that script.
  * `pip install '.[EXTRA,...]'`: each extra is in pyproject.toml (one that
    is not yet skips with its reason).
Other commands (curl, unzip, cd, source, ...) are not this project's.

Every relative link of README.md and docs/*.md points at an existing file.
"""

import ast
import concurrent.futures
import functools
import glob
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from typing import Dict, List, NamedTuple, Optional, Set, Tuple

import pytest

try:
  import tomllib  # pylint: disable=g-import-not-at-top
except ModuleNotFoundError:  # Python 3.10
  tomllib = pytest.importorskip('tomli', reason='reads pyproject.toml')

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ['README.md'] + sorted(
    os.path.relpath(p, REPO_ROOT)
    for p in glob.glob(os.path.join(REPO_ROOT, 'docs', '*.md')))
SHELL_LANGUAGES = ('bash', 'sh', 'shell', 'console')
PYTHONS = ('python', 'python3')
# Files that a feature not merged yet will bring: the link is checked once
# pyproject.toml has the console script named here.
PENDING_FILES = {'docs/app_screenshot.png': 'tfunsup3d-app'}
_FENCE = re.compile(r'^```(\w*)\s*$')
_LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')
_ASSIGNMENT = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*=')
_SEPARATORS = ('&&', '||', ';', '|', '&')


class Command(NamedTuple):
  page: str
  line: int
  words: Tuple[str, ...]

  def __str__(self):
    return f'{self.page}:{self.line}: {" ".join(self.words)}'


def _shell_blocks(text: str) -> List[Tuple[int, List[str]]]:
  """(first line number, lines) of each fenced shell block of `text`."""
  blocks, in_block = [], False
  for number, line in enumerate(text.splitlines(), 1):
    match = _FENCE.match(line.strip())
    if not in_block and match:
      in_block, is_shell = True, match.group(1) in SHELL_LANGUAGES
      blocks.append((number + 1, []))
      if not is_shell:
        blocks.pop()
    elif in_block and line.strip() == '```':
      in_block = False
    elif in_block and is_shell:
      blocks[-1][1].append(line)
  return blocks


def _split_words(text: str) -> List[List[str]]:
  """Shell words of one logical line, split at command separators."""
  lexer = shlex.shlex(text, posix=True, punctuation_chars=';&|')
  lexer.whitespace_split = True
  lexer.commenters = '#'
  commands, words = [], []
  for word in lexer:
    if word in _SEPARATORS:
      commands.append(words)
      words = []
    else:
      words.append(word)
  return [c for c in commands + [words] if c]


def page_commands(page: str) -> List[Command]:
  """Every command of the shell blocks of `page` (relative to the repo)."""
  with open(os.path.join(REPO_ROOT, page), encoding='utf-8') as f:
    text = f.read()
  commands = []
  for start, lines in _shell_blocks(text):
    logical, first = '', None
    for offset, line in enumerate(lines):
      first = start + offset if first is None else first
      if line.rstrip().endswith('\\'):
        logical += line.rstrip()[:-1] + ' '
        continue
      logical += line
      try:
        split = _split_words(logical)
      except ValueError:  # a quotation that goes on on the next line
        logical += '\n'
        continue
      for words in split:
        while words and _ASSIGNMENT.match(words[0]):
          words = words[1:]
        if words:
          commands.append(Command(page, first, tuple(words)))
      logical, first = '', None
  return commands


@functools.lru_cache(maxsize=None)
def pyproject() -> dict:
  with open(os.path.join(REPO_ROOT, 'pyproject.toml'), 'rb') as f:
    return tomllib.load(f)


def console_scripts() -> Dict[str, str]:
  """{script name: 'module:function'} of pyproject.toml."""
  return dict(pyproject()['project'].get('scripts', {}))


def _helpxml(name: str, entry_point: str) -> Set[str]:
  """Flags a console script accepts: its `--helpxml`, run in a subprocess
  from this tree (booleans also as `no<name>`)."""
  module, function = entry_point.split(':')
  code = ('import importlib, sys; '
          f'm = importlib.import_module({module!r}); '
          f'sys.argv = [{name!r}, "--helpxml"]; m.{function}()')
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [REPO_ROOT] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
  out = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, env=env,
                       capture_output=True, text=True, timeout=300,
                       check=False)
  if '<AllFlags>' not in out.stdout:
    raise AssertionError(f'{name} --helpxml failed: {out.stderr[-2000:]}')
  names = set()
  for flag in ElementTree.fromstring(out.stdout).iter('flag'):
    flag_name = flag.findtext('name')
    names.add(flag_name)
    if flag.findtext('type') == 'bool':
      names.add('no' + flag_name)
  return names


@functools.lru_cache(maxsize=None)
def script_flags() -> Dict[str, Set[str]]:
  """{script: its flags} for every known script the pages run (the
  subprocesses run in parallel)."""
  wanted = {_script_name(c.words[0]) for page in PAGES
            for c in page_commands(page)} | {
                s for s in map(_exec_target, _shell_scripts()) if s}
  known = console_scripts()
  wanted = sorted(w for w in wanted if w in known)
  with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
    results = pool.map(lambda n: _helpxml(n, known[n]), wanted)
    return dict(zip(wanted, results))


def _script_name(word: str) -> Optional[str]:
  base = os.path.basename(word)
  return base if base.startswith('tfunsup3d-') else None


def _shell_scripts() -> List[str]:
  return [os.path.relpath(p, REPO_ROOT)
          for p in glob.glob(os.path.join(REPO_ROOT, '*.sh'))]


def _exec_target(path: str) -> Optional[str]:
  """The console script a repository shell script execs, if any."""
  with open(os.path.join(REPO_ROOT, path), encoding='utf-8') as f:
    found = re.findall(r'^\s*exec\s+\S*?(tfunsup3d-[\w-]+)', f.read(),
                       re.MULTILINE)
  return found[-1] if found else None


def _flags(words) -> List[str]:
  return [w[2:].split('=', 1)[0] for w in words
          if w.startswith('--') and len(w) > 2]


def _module_file(module: str) -> Optional[str]:
  base = os.path.join(REPO_ROOT, *module.split('.'))
  for path in (base + '.py', os.path.join(base, '__main__.py'),
               os.path.join(base, '__init__.py')):
    if os.path.isfile(path):
      return path
  return None


@functools.lru_cache(maxsize=None)
def _options_and_imports(module: str) -> Tuple[Set[str], Tuple[str, ...]]:
  """(`--option` names of the `add_argument` calls in a repository module,
  the modules it imports), read once per module."""
  path = _module_file(module)
  if path is None:
    return set(), ()
  with open(path, encoding='utf-8') as f:
    tree = ast.parse(f.read())
  options, imports = set(), []
  for node in ast.walk(tree):
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        and node.func.attr == 'add_argument'):
      options.update(a.value[2:] for a in node.args
                     if isinstance(a, ast.Constant) and
                     isinstance(a.value, str) and a.value.startswith('--'))
    elif isinstance(node, ast.ImportFrom) and node.module:
      imports.append(node.module)
      imports.extend(f'{node.module}.{alias.name}' for alias in node.names)
    elif isinstance(node, ast.Import):
      imports.extend(alias.name for alias in node.names)
  return options, tuple(imports)


def argparse_options(module: str) -> Set[str]:
  """`--option` names of `add_argument` calls in a repository module and in
  the repository modules it imports (read, not imported)."""
  options, seen, todo = {'help'}, set(), [module]
  while todo:
    name = todo.pop()
    if name in seen:
      continue
    seen.add(name)
    found, imports = _options_and_imports(name)
    options |= found
    todo.extend(imports)
  return options


def check_script(name: str, words) -> None:
  if name not in console_scripts():
    pytest.skip(f'{name} is not in pyproject.toml [project.scripts] yet')
  known = script_flags()
  if name not in known:  # a script no page runs (this file's own tests)
    known[name] = _helpxml(name, console_scripts()[name])
  unknown = [f for f in _flags(words) if f not in known[name]]
  assert not unknown, f'{name} has no flag(s) {unknown}'


def check_python(words) -> None:
  args = list(words[1:])
  if args[:1] == ['-m'] and len(args) > 1:
    module = args[1]
    if os.path.isdir(os.path.join(REPO_ROOT, module.split('.')[0])):
      assert _module_file(module), f'no module {module} in the repository'
      unknown = [f for f in _flags(args[2:])
                 if f not in argparse_options(module)]
      assert not unknown, f'python -m {module} has no option(s) {unknown}'
    else:
      assert importlib.util.find_spec(module), f'no module {module}'
  elif args and args[0].endswith('.py'):
    assert os.path.isfile(os.path.join(REPO_ROOT, args[0])), args[0]


def check_pip(words) -> None:
  extras = pyproject()['project'].get('optional-dependencies', {})
  for word in words:
    match = re.match(r'^\.\[([\w,-]+)\]$', word)
    if match:
      missing = [e for e in match.group(1).split(',') if e not in extras]
      if missing:
        pytest.skip(f'extra(s) {missing} not in pyproject.toml yet')


def check_command(command: Command) -> None:
  """Checks one command if it runs this project; others pass."""
  first = command.words[0]
  name = _script_name(first)
  if name:
    check_script(name, command.words)
  elif os.path.basename(first) in PYTHONS:
    check_python(command.words)
  elif os.path.basename(first) in ('pip', 'pip3'):
    check_pip(command.words)
  elif first.startswith('./'):
    assert os.path.isfile(os.path.join(REPO_ROOT, first)), f'no file {first}'
    target = _exec_target(first) if first.endswith('.sh') else None
    if target and _flags(command.words[1:]):
      check_script(target, command.words[1:])


ALL_COMMANDS = [c for page in PAGES for c in page_commands(page)]


def test_readme_has_the_two_commands():
  words = [c.words for c in page_commands('README.md')]
  assert ('./quickstart.sh',) in words and ('./test.sh',) in words


@pytest.mark.parametrize('command', ALL_COMMANDS, ids=str)
def test_command_is_real(command):
  check_command(command)


def relative_links(page: str, root: str = REPO_ROOT
                   ) -> List[Tuple[int, str]]:
  """(line, target) of the relative links and images of `page`, outside
  code blocks and code spans (a target may end in #fragment)."""
  with open(os.path.join(root, page), encoding='utf-8') as f:
    lines = f.read().splitlines()
  links, in_code = [], False
  for number, line in enumerate(lines, 1):
    if line.strip().startswith('```'):
      in_code = not in_code
      continue
    if in_code:
      continue
    for target in _LINK.findall(re.sub(r'`[^`]*`', '', line)):
      if not re.match(r'^[a-z][a-z0-9+.-]*:', target):
        links.append((number, target))
  return links


def heading_anchors(page: str, root: str = REPO_ROOT) -> Set[str]:
  """GitHub's anchors of the headings of a Markdown page."""
  with open(os.path.join(root, page), encoding='utf-8') as f:
    text = re.sub(r'```.*?```', '', f.read(), flags=re.DOTALL)
  return {re.sub(r'[^\w\- ]', '', h.strip().lower()).replace(' ', '-')
          for h in re.findall(r'^#+ (.*)$', text, re.MULTILINE)}


def broken_links(page: str, root: str = REPO_ROOT
                 ) -> Tuple[List[str], List[str]]:
  """Links of `page` to missing files or headings, and to pending files
  (`PENDING_FILES` whose script is not in pyproject.toml yet)."""
  missing, pending = [], []
  for number, link in relative_links(page, root):
    target, _, anchor = link.partition('#')
    path = os.path.normpath(os.path.join(os.path.dirname(page), target or
                                         os.path.basename(page)))
    if os.path.exists(os.path.join(root, path)):
      if anchor and path.endswith('.md') and anchor not in heading_anchors(
          path, root):
        missing.append(f'{page}:{number}: {link} (no such heading)')
      continue
    script = PENDING_FILES.get(path)
    if script and script not in console_scripts():
      pending.append(path)
    else:
      missing.append(f'{page}:{number}: {link}')
  return missing, pending


@pytest.mark.parametrize('page', PAGES)
def test_relative_links_exist(page):
  missing, pending = broken_links(page)
  assert not missing, 'links to missing files:\n' + '\n'.join(missing)
  if pending:
    scripts = sorted({PENDING_FILES[p] for p in pending})
    pytest.skip(f'{pending}: made with {scripts}, not in pyproject.toml yet')


def test_broken_links_are_found(tmp_path):
  (tmp_path / 'docs').mkdir()
  (tmp_path / 'docs' / 'a.md').write_text('# A page\n## 2. Its part\n')
  (tmp_path / 'README.md').write_text(
      '[ok](docs/a.md#2-its-part) [web](https://x.org/y) `[no](gone.md)`\n'
      '[file](docs/gone.md)\n![pic](docs/a.md#no-part)\n[self](#gone)\n')
  missing, _ = broken_links('README.md', str(tmp_path))
  assert missing == ['README.md:2: docs/gone.md',
                     'README.md:3: docs/a.md#no-part (no such heading)',
                     'README.md:4: #gone (no such heading)']


def test_parser_reads_continuations_comments_and_separators():
  text = ('```bash\nA=1 tfunsup3d-train --x=1 \\\n    --y  # --z\n'
          'cd p && unzip f.zip; cd ..\n```\n```\ntfunsup3d-no --q\n```\n')
  blocks = _shell_blocks(text)
  assert blocks == [(2, ['A=1 tfunsup3d-train --x=1 \\', '    --y  # --z',
                         'cd p && unzip f.zip; cd ..'])]
  assert _split_words('cd p && unzip f.zip; cd ..') == [
      ['cd', 'p'], ['unzip', 'f.zip'], ['cd', '..']]
  assert _flags(['tfunsup3d-train', '--x=1', '--y', '--']) == ['x', 'y']


def test_heading_anchors_are_githubs():
  assert {'6-metrics', 'the-rasterisers-sample-convention',
          '7-the-papers-numbers'} <= heading_anchors('docs/method.md')


def test_a_wrong_flag_or_script_fails():
  with pytest.raises(AssertionError, match='no_such_flag'):
    check_command(Command('t', 1, ('tfunsup3d-convert', '--no_such_flag=1')))
  with pytest.raises(AssertionError, match='no_such_option'):
    check_command(Command('t', 1, ('python', '-m', 'scripts.build_sync',
                                   '--no_such_option')))
  with pytest.raises(AssertionError, match='no module'):
    check_command(Command('t', 1, ('python', '-m', 'bench.no_such_module')))
  check_command(Command('t', 1, ('tfunsup3d-convert', '--nooverwrite',
                                 '--helpfull', '--lam_perc=0')))
