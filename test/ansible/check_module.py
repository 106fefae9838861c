#!/usr/bin/python3
"""Sanity checks of the Ansible module ansible/library/livepatch.py that need no network and
no process (what `ansible-test sanity` would catch first), and its decisions on livepatch's
JSON, single- and multi-process (the contract of issue 18), with made-up outputs:

  python3 test/ansible/check_module.py [MODULE]

Prints one line per check and exits 1 at the first failure."""

import importlib.util
import json
import os
import sys

import yaml

sys.dont_write_bytecode = True  # no __pycache__ in the source tree

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATH = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, 'ansible/library/livepatch.py')


def fail(msg):
    sys.exit('FAIL: ' + msg)


def ok(msg):
    print('ok: ' + msg)


# --- syntax and the three documentation strings --------------------------------------------

with open(PATH) as f:
    compile(f.read(), PATH, 'exec')
ok('compiles')

spec = importlib.util.spec_from_file_location('livepatch_module', PATH)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
ok('imports')

doc = yaml.safe_load(mod.DOCUMENTATION)
for key in ('module', 'short_description', 'description', 'options', 'author'):
    if key not in doc:
        fail('DOCUMENTATION has no %s' % key)
if doc['module'] != 'livepatch':
    fail('DOCUMENTATION module is %r' % doc['module'])
ret = yaml.safe_load(mod.RETURN)
examples = yaml.safe_load(mod.EXAMPLES)
if not isinstance(ret, dict) or not isinstance(examples, list):
    fail('RETURN is not a mapping or EXAMPLES not a list of tasks')
ok('DOCUMENTATION, EXAMPLES and RETURN are YAML')


def all_strings(node, where):
    """Every description is text: an unquoted 'a: b' in YAML becomes a mapping."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == 'description':
                for line in v if isinstance(v, list) else [v]:
                    if not isinstance(line, str):
                        fail('%s.description holds a %s: %r' % (where, type(line).__name__, line))
            else:
                all_strings(v, '%s.%s' % (where, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            all_strings(v, '%s[%d]' % (where, i))


all_strings(doc, 'DOCUMENTATION')
all_strings(ret, 'RETURN')
for r in doc.get('requirements', []) + doc.get('notes', []):
    if not isinstance(r, str):
        fail('a requirement or note is not text: %r' % r)
ok('every description is text')


def compare(options, argspec, where):
    """DOCUMENTATION's options and the argument_spec agree, suboptions included."""
    if set(options) != set(argspec):
        fail('%s: documented %s, argument_spec %s' % (where, sorted(options), sorted(argspec)))
    for name, o in options.items():
        a = argspec[name]
        at = '%s.%s' % (where, name)
        if not o.get('description'):
            fail(at + ' has no description')
        for key, dflt in (('type', 'str'), ('elements', None), ('required', False),
                          ('default', None), ('choices', None)):
            if o.get(key, dflt) != a.get(key, dflt):
                fail('%s: %s is %r in DOCUMENTATION, %r in argument_spec'
                     % (at, key, o.get(key, dflt), a.get(key, dflt)))
        if a.get('required') and 'default' in a:
            fail(at + ' is required and has a default')
        if ('suboptions' in o) != ('options' in a):
            fail(at + ': suboptions documented but not in argument_spec, or the reverse')
        if 'options' in a:
            compare(o['suboptions'], a['options'], at)


compare(doc['options'], mod.argument_spec(), 'options')
ok('DOCUMENTATION options match argument_spec (%d options)' % len(doc['options']))

for task in examples:
    args = task.get('livepatch')
    if args is None:
        continue
    unknown = set(args) - set(doc['options'])
    if unknown:
        fail('example %r uses undocumented options %s' % (task.get('name'), sorted(unknown)))
ok('the examples use documented options only')

# --- what the module makes of livepatch's JSON ---------------------------------------------

SITE = {'function': 'counterd:compute', 'target': 'counterd:compute_v2', 'address': '0x1004',
        'old_bytes': 'f0 48 83 05 1b', 'new_bytes': 'e9 17 00 00 00'}


def report(status, sites=(SITE,), **extra):
    r = {'pid': 42, 'comm': 'counterd', 'status': status, 'sites': list(sites)}
    r.update(extra)
    return r


def expect(what, got, want):
    if got != want:
        fail('%s: got %r, expected %r' % (what, got, want))


single = mod.single_result
expect('applied', single(report('applied'), 0, False), (True, None))
expect('already_applied', single(report('already_applied', ()), 0, False), (False, None))
expect('not_patched', single(report('not_patched', ()), 0, False), (False, None))
expect('reverted', single(report('reverted'), 0, False), (True, None))
expect('dry run, planned', single(report('planned'), 0, True), (True, None))
expect('dry run, nothing to do', single(report('already_applied', ()), 0, True), (False, None))
changed, msg = single({'error': {'code': 4, 'message': "symbol 'nosuch' not found"}}, 4, False)
expect('error object', (changed, msg), (False, "symbol 'nosuch' not found"))
changed, msg = single(report('rolled_back', error={'code': 6, 'message': 'sync timed out'}),
                      6, False)
if changed or 'unchanged' not in msg or 'sync timed out' not in msg or '6' not in msg:
    fail('rolled_back: %r %r' % (changed, msg))
changed, msg = single(report('applied', error={'code': 7, 'message': 'old code ran'}), 7, False)
if not changed or 'in place' not in msg or 'old code ran' not in msg:
    fail('unverified: %r %r' % (changed, msg))
ok('single-process statuses: changed only when written, failures with the message')


def proc(pid, outcome, code=0, message=None, rep=None):
    return {'pid': pid, 'comm': 'counterd', 'outcome': outcome, 'exit_code': code,
            'message': message, 'report': rep}


multi = mod.multi_result
out = {'processes': [proc(1, 'applied', rep=report('applied')),
                     proc(2, 'already_applied', rep=report('already_applied', ())),
                     proc(3, 'exited')],
       'summary': {'processes': 3, 'exit_code': 0, 'text': '3 processes: 1 applied, ...'}}
expect('multi applied', multi(out, 0, False), (True, None))
out = {'processes': [proc(1, 'already_applied', rep=report('already_applied', ())),
                     proc(2, 'not_selected')],
       'summary': {'processes': 2, 'exit_code': 0, 'text': '2 processes'}}
expect('multi nothing to do', multi(out, 0, False), (False, None))
out = {'processes': [proc(1, 'planned', rep=report('planned')),
                     proc(2, 'planned', rep=report('already_applied', ()))],
       'summary': {'processes': 2, 'exit_code': 0, 'text': '2 processes: 2 planned'}}
expect('multi dry run', multi(out, 0, True), (True, None))
out = {'processes': [proc(1, 'undone', rep=report('reverted')),
                     proc(2, 'rolled_back', 6, 'sync timed out', report('rolled_back')),
                     proc(3, 'skipped')],
       'summary': {'processes': 3, 'exit_code': 6,
                   'text': '3 processes: 1 undone, 1 rolled_back, 1 skipped'}}
changed, msg = multi(out, 6, False)
if not changed or not msg.startswith('3 processes') or 'pid 2' not in msg or \
        'unchanged' not in msg or 'sync timed out' not in msg or 'pid 1' in msg:
    fail('multi atomic failure: %r %r' % (changed, msg))
out2 = {'processes': [proc(1, 'unverified', 7, 'old code ran', report('applied')),
                      proc(2, 'refused', 3, 'process 2 is traced by 9 (gdb)')],
        'summary': {'processes': 2, 'exit_code': 7, 'text': '2 processes: 1 unverified, 1 refused'}}
changed, msg = multi(out2, 7, False)
if not changed or 'old code ran' not in msg or 'traced by 9' not in msg:
    fail('multi unverified: %r %r' % (changed, msg))
ok('multi-process outcomes: undone and unverified count as written, rolled_back says unchanged')

sites = mod.sites_of(out, True)
expect('sites of a multi run', [s['pid'] for s in sites], [1, 2])
diff = mod.make_diff(mod.sites_of(report('applied'), False))
if 'f0 48 83 05 1b' not in diff['before'] or 'e9 17 00 00 00' not in diff['after'] or \
        'counterd:compute_v2' not in diff['after']:
    fail('diff: %s' % json.dumps(diff))
ok('the diff lists each function with its old and new bytes')


# --- the command line built from the parameters --------------------------------------------

class FakeModule:
    def __init__(self, check_mode=False, **params):
        self.params = dict((k, v.get('default')) for k, v in mod.argument_spec().items())
        self.params.update(params)
        self.check_mode = check_mode

    def fail_json(self, **kw):
        raise AssertionError(kw['msg'])


def cmdline(check_mode=False, **params):
    m = FakeModule(check_mode, **params)
    state = mod.resolve_state(m)
    sel, multi_mode = mod.selection_args(m.params)
    return sel + mod.action_args(m, state), multi_mode


pairs = [{'func': 'compute', 'target': 'compute_v2'}]
expect('patch', cmdline(pid=[7], pairs=pairs, verify=0.5, timeout=900),
       (['--pid', '7', '--func', 'compute', '--target', 'compute_v2', '--timeout', '900',
         '--verify=0.5'], False))
expect('check mode', cmdline(True, pid=[7], pairs=pairs, verify=1.0),
       (['--pid', '7', '--func', 'compute', '--target', 'compute_v2', '--dry-run'], False))
expect('revert the pairs', cmdline(pid=[7], pairs=pairs, state='reverted'),
       (['--pid', '7', '--revert', 'compute'], False))
expect('revert_all', cmdline(pid=[7], revert_all=True), (['--pid', '7', '--revert-all'], False))
expect('atomic is multi-process only', cmdline(pid=[7], pairs=pairs, atomic=True)[0][:2],
       ['--pid', '7'])
expect('exe, atomic', cmdline(exe='/usr/sbin/d', pairs=pairs, atomic=True, safe=True),
       (['--exe', '/usr/sbin/d', '--atomic', '--func', 'compute', '--target', 'compute_v2',
         '--safe'], True))
expect('two pids', cmdline(pid=[7, 8], revert=['f', 'g'], callsites=True),
       (['--pid', '7', '--pid', '8', '--revert', 'f', '--revert', 'g', '--callsites'], True))
expect('load', cmdline(pid=[7], load=['/p/fix.o'], pairs=pairs)[0][2:4], ['--load', '/p/fix.o'])
try:
    cmdline(pid=[7], revert=['f'], state='patched')
    fail('revert with state=patched was accepted')
except AssertionError:
    pass
ok('parameters map to livepatch options')
print('all passed')
