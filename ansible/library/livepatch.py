#!/usr/bin/python3
# -*- coding: utf-8 -*-
# An Ansible module that drives livepatch (issue 19). It runs the livepatch binary on the
# managed host with --json and decides everything from that one object (or, in
# multi-process mode, from its processes[] and summary): never from livepatch's text.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: livepatch
short_description: Redirect functions of running x86-64 processes, live, with livepatch
description:
  - Runs C(livepatch) on the managed host to redirect functions of running processes to
    other functions (patch), or to put their original bytes back (revert), without
    restarting them.
  - Everything is decided from livepatch's C(--json) output. C(changed) is true only when
    bytes were written; a second run of the same task reports C(changed=false)
    (livepatch's C(already_applied) and C(not_patched)).
  - Check mode runs C(livepatch --dry-run) (nothing is attached or written) and reports
    C(changed=true) when bytes would be written. With C(--diff), the functions and the
    bytes at each site (before and after) are shown.
  - One process (I(pid) with one value) is one livepatch transaction; several pids, I(all)
    or I(exe) use livepatch's multi-process mode, one transaction per process.
  - A failure carries livepatch's exit status as C(rc) and its message. A transaction that
    was rolled back (exit 6) fails the task; the message says the process is unchanged.
  - I(load) is a path on the managed host, not on the controller; copy the patch object
    there first (see the examples). Use a root-owned file that is not writable by group
    or others, else livepatch refuses it.
version_added: "0.1"
author:
  - livepatch contributors
requirements:
  - the livepatch binary on the managed host (see I(livepatch_path))
  - root, or CAP_SYS_PTRACE, on the managed host (C(become=true))
options:
  pid:
    description:
      - The process to patch, or a list of processes.
      - More than one pid selects livepatch's multi-process mode.
      - Exactly one of I(pid), or I(all) and/or I(exe), is required.
    type: list
    elements: int
  all:
    description:
      - Every process that maps the file at this path (C(livepatch --all)); multi-process
        mode. Combined with I(exe), only the processes both select.
    type: path
  exe:
    description:
      - Every process whose executable is the file at this path (C(livepatch --exe));
        multi-process mode.
    type: path
  pairs:
    description:
      - The functions to redirect, one transaction for all of them.
      - With I(state=reverted) and no I(revert), the functions of these pairs are
        reverted, so one list of pairs serves both directions.
    type: list
    elements: dict
    suboptions:
      func:
        description: The function to redirect, C([OBJECT:]SYMBOL) or C(0xADDRESS).
        type: str
        required: true
      target:
        description:
          - The function it will jump to, same syntax; with I(load), a function of the
            patch (C(NAME) or C(PATCH.o:NAME)).
        type: str
        required: true
  plan:
    description:
      - A plan file on the managed host (C(livepatch --plan)), one C(F G) pair a line.
      - With I(state=reverted) and no I(revert), the functions it names are reverted.
    type: path
  load:
    description:
      - Patch objects (C(cc -c) output) to link into the process first
        (C(livepatch --load)), as paths B(on the managed host). Copy each one there with
        a C(copy) task before this one.
      - In check mode, a file that is absent (its C(copy) did not run) cannot be dry-run;
        the task then reports C(changed=true) with a warning.
      - Ignored with I(state=reverted) (a reverted patch stays mapped, unused).
    type: list
    elements: path
  revert:
    description:
      - Functions to put back to their original bytes (C(livepatch --revert)). Implies
        I(state=reverted).
    type: list
    elements: str
  revert_all:
    description:
      - Put back every function that holds a jump livepatch wrote
        (C(livepatch --revert-all)). Implies I(state=reverted).
    type: bool
    default: false
  callsites:
    description:
      - Call-site mode (C(livepatch --callsites)) - rewrite each direct C(call F) instead
        of F's entry; with I(state=reverted), put those calls back.
    type: bool
    default: false
  verify:
    description:
      - After writing, check with BPF uprobes over this many seconds that the old code no
        longer runs (C(livepatch --verify=SECONDS)). A failed verification (exit 7) fails
        the task, and the change is in place (C(changed=true)).
      - Not used in check mode (a dry run writes nothing to verify).
    type: float
  safe:
    description:
      - Make the last write only when no thread is inside a function being replaced
        (C(livepatch --safe)).
    type: bool
    default: false
  atomic:
    description:
      - Multi-process mode - all or nothing (C(livepatch --atomic)); when one process
        fails, the ones already patched are reverted.
      - Has no effect on a single process, whose one transaction is all or nothing already.
    type: bool
    default: false
  state:
    description:
      - C(patched) redirects I(pairs) and/or the I(plan). C(reverted) reverts I(revert),
        else I(revert_all), else the functions of I(pairs) and I(plan).
      - Defaults to C(reverted) when I(revert) or I(revert_all) is given, else to
        C(patched).
    type: str
    choices: [patched, reverted]
  timeout:
    description:
      - How long one sync may take, in milliseconds, before the transaction is rolled
        back (C(livepatch --timeout)).
    type: int
  livepatch_path:
    description:
      - The livepatch binary on the managed host, a path or a name looked up in C(PATH)
        and the sbin directories.
    type: str
    default: livepatch
notes:
  - Supports check mode and diff mode.
  - The module runs C(livepatch --json) and reads only its JSON output.
  - Exit statuses (C(rc)) - 2 usage, 3 process unusable, 4 symbol, 5 site or patch
    refused, 6 rolled back (process unchanged), 7 applied but not verified, 1 internal.
  - See the manual page livepatch(8) and schema/livepatch.schema.json in livepatch's
    sources for the reports.
'''

EXAMPLES = r'''
- name: Redirect compute to compute_v2 in one process, proven by BPF for 1 s
  livepatch:
    pid: "{{ counterd_pid }}"
    pairs:
      - { func: compute, target: compute_v2 }
    verify: 1
  become: true

- name: Put it back (the same pairs, state reverted)
  livepatch:
    pid: "{{ counterd_pid }}"
    pairs:
      - { func: compute, target: compute_v2 }
    state: reverted
  become: true

- name: Copy a patch object to the host (load is a path on the host)
  copy:
    src: fix.o
    dest: /var/lib/livepatch/fix.o
    owner: root
    mode: "0600"
  become: true

- name: Link it into every counterd and redirect compute to its function
  livepatch:
    exe: /usr/sbin/counterd
    load: /var/lib/livepatch/fix.o
    pairs:
      - { func: compute, target: compute_fixed }
    atomic: true
  become: true

- name: Revert everything livepatch wrote in one process
  livepatch:
    pid: 4242
    revert_all: true
  become: true
'''

RETURN = r'''
changed:
  description: Whether bytes were written (in check mode, would be).
  returned: always
  type: bool
rc:
  description: livepatch's exit status.
  returned: always
  type: int
  sample: 0
cmd:
  description: The livepatch command line that ran.
  returned: always
  type: list
  elements: str
status:
  description:
    - Single process - the report's status (C(planned), C(applied), C(reverted),
      C(already_applied), C(not_patched), C(rolled_back), C(failed)).
    - Multi-process - the summary line (C(summary.text)).
  returned: when livepatch printed a report
  type: str
  sample: applied
report:
  description:
    - Single process - livepatch's C(--json) report as it printed it (see
      schema/livepatch.schema.json), or C({"error":{"code":N,"message":"..."}}).
  returned: single process
  type: dict
processes:
  description:
    - Multi-process - one item per process, C(pid), C(comm), C(outcome), C(exit_code),
      C(message) and C(report) (that process's single-process report, or null).
  returned: multi-process mode
  type: list
  elements: dict
summary:
  description:
    - Multi-process - C(processes), C(exit_code), C(counts) (outcome to number) and
      C(text).
  returned: multi-process mode
  type: dict
  sample: {"processes": 2, "exit_code": 0, "counts": {"applied": 2}, "text": "2 processes: 2 applied"}
sites:
  description:
    - Every site written (or, in check mode, to write), over all processes - C(pid),
      C(function), C(target), C(address), C(old_bytes), C(new_bytes).
  returned: always
  type: list
  elements: dict
stderr:
  description: What livepatch wrote on standard error (usually nothing with --json).
  returned: always
  type: str
'''

import json
import os

from ansible.module_utils.basic import AnsibleModule

# Outcomes (multi-process) and statuses (single) that mean bytes were written. An "undone"
# process (--atomic) was patched and then reverted: written twice.
WRITTEN = ('applied', 'reverted', 'undone')
# In multi-process mode a process whose --verify failed is "unverified": written too.
WRITTEN_MULTI = WRITTEN + ('unverified',)
# Multi-process outcomes that are not failures (the contract's exit-0 set).
BENIGN = ('planned', 'applied', 'reverted', 'already_applied', 'not_patched', 'listed',
          'exited', 'not_selected')
# Not failures themselves but the consequence of one (--atomic, --canary): counted in the
# summary's text, not named one by one.
CONSEQUENCES = ('undone', 'skipped')
UNCHANGED = 'the process is unchanged: livepatch rolled the transaction back'


def argument_spec():
    return dict(
        pid=dict(type='list', elements='int'),
        all=dict(type='path'),
        exe=dict(type='path'),
        pairs=dict(type='list', elements='dict', options=dict(
            func=dict(type='str', required=True),
            target=dict(type='str', required=True),
        )),
        plan=dict(type='path'),
        load=dict(type='list', elements='path'),
        revert=dict(type='list', elements='str'),
        revert_all=dict(type='bool', default=False),
        callsites=dict(type='bool', default=False),
        verify=dict(type='float'),
        safe=dict(type='bool', default=False),
        atomic=dict(type='bool', default=False),
        state=dict(type='str', choices=['patched', 'reverted']),
        timeout=dict(type='int'),
        livepatch_path=dict(type='str', default='livepatch'),
    )


def plan_functions(module, path):
    """The F of each "F G" line of a plan file (for state=reverted)."""
    funcs = []
    try:
        with open(path) as f:
            for line in f:
                words = line.split('#', 1)[0].split()
                if words:
                    funcs.append(words[0])
    except (IOError, OSError) as e:
        module.fail_json(msg='cannot read plan file %s: %s' % (path, e), rc=2)
    return funcs


def resolve_state(module):
    p = module.params
    reverting = bool(p['revert']) or p['revert_all']
    state = p['state'] or ('reverted' if reverting else 'patched')
    if state == 'patched':
        if reverting:
            module.fail_json(msg='revert and revert_all go with state=reverted', rc=2)
        if not p['pairs'] and not p['plan']:
            module.fail_json(msg='state=patched needs pairs or plan', rc=2)
    elif not (reverting or p['pairs'] or p['plan']):
        module.fail_json(msg='state=reverted needs revert, revert_all, pairs or plan', rc=2)
    return state


def selection_args(p):
    args = []
    multi = bool(p['all'] or p['exe'] or len(p['pid'] or []) > 1)
    for pid in p['pid'] or []:
        args += ['--pid', str(pid)]
    if p['all']:
        args += ['--all', p['all']]
    if p['exe']:
        args += ['--exe', p['exe']]
    if p['atomic'] and multi:
        args.append('--atomic')
    return args, multi


def action_args(module, state):
    p = module.params
    args = []
    if state == 'patched':
        for path in p['load'] or []:
            args += ['--load', path]
        for pair in p['pairs'] or []:
            args += ['--func', pair['func'], '--target', pair['target']]
        if p['plan']:
            args += ['--plan', p['plan']]
    elif p['revert']:
        for func in p['revert']:
            args += ['--revert', func]
    elif p['revert_all']:
        args.append('--revert-all')
    else:
        funcs = [pair['func'] for pair in p['pairs'] or []]
        if p['plan']:
            funcs += plan_functions(module, p['plan'])
        for func in funcs:
            args += ['--revert', func]
    if p['callsites']:
        args.append('--callsites')
    if p['safe']:
        args.append('--safe')
    if p['timeout'] is not None:
        args += ['--timeout', str(p['timeout'])]
    if p['verify'] is not None and not module.check_mode:
        args.append('--verify=%g' % p['verify'])
    if module.check_mode:
        args.append('--dry-run')
    return args


def reports_of(out, multi):
    """(pid, report) for every process report in livepatch's output."""
    if not multi:
        return [(out.get('pid'), out)]
    return [(proc.get('pid'), proc.get('report') or {}) for proc in out.get('processes') or []]


def sites_of(out, multi):
    sites = []
    for pid, report in reports_of(out, multi):
        for s in report.get('sites') or []:
            sites.append(dict(pid=pid, function=s.get('function'), target=s.get('target'),
                              address=s.get('address'), old_bytes=s.get('old_bytes'),
                              new_bytes=s.get('new_bytes')))
    return sites


def make_diff(sites):
    """before/after text: one line per site, the function and its bytes."""
    before, after = [], []
    for s in sites:
        where = 'pid %s %s at %s' % (s['pid'], s['function'], s['address'])
        before.append('%s: %s\n' % (where, s['old_bytes']))
        dest = ' (jmp to %s)' % s['target'] if s['target'] else ' (original)'
        after.append('%s: %s%s\n' % (where, s['new_bytes'], dest))
    return dict(before=''.join(before), after=''.join(after),
                before_header='live code', after_header='live code, patched')


def single_result(out, rc, check_mode):
    """(changed, failure message or None) of a single-process report."""
    status = out.get('status')
    err = (out.get('error') or {}).get('message')
    if check_mode:
        changed = status == 'planned' and bool(out.get('sites'))
    else:
        changed = status in WRITTEN
    if rc == 0:
        return changed, None
    if status == 'rolled_back':
        return False, '%s (exit %d): %s' % (UNCHANGED, rc, err or 'rolled back')
    if rc == 7:
        return changed, 'written but not verified (exit 7; the change is in place): %s' % err
    return changed, err or 'livepatch exited %d (status %s)' % (rc, status)


def multi_result(out, rc, check_mode):
    procs = out.get('processes') or []
    if check_mode:
        changed = any(p.get('outcome') == 'planned' and (p.get('report') or {}).get('sites')
                      for p in procs)
    else:
        changed = any(p.get('outcome') in WRITTEN_MULTI for p in procs)
    summary = out.get('summary') or {}
    if rc == 0:
        return changed, None
    bad = []
    for p in procs:
        outcome = p.get('outcome')
        if outcome in BENIGN or outcome in CONSEQUENCES:
            continue
        why = p.get('message') or outcome
        if outcome == 'rolled_back':
            why = '%s: %s' % (UNCHANGED, why)
        bad.append('pid %s (%s): %s (exit %s): %s'
                   % (p.get('pid'), p.get('comm'), outcome, p.get('exit_code'), why))
    head = summary.get('text') or 'livepatch exited %d' % rc
    return changed, '; '.join([head] + bad)


def missing_loads(module):
    return [path for path in module.params['load'] or [] if not os.path.exists(path)]


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[('pid', 'all'), ('pid', 'exe'), ('revert', 'revert_all')],
        required_one_of=[('pid', 'all', 'exe')],
        supports_check_mode=True,
    )
    p = module.params
    state = resolve_state(module)
    if state == 'reverted' and p['load']:
        module.warn('load is ignored with state=reverted: a reverted patch stays mapped')

    binary = p['livepatch_path']
    if '/' not in binary:
        binary = module.get_bin_path(binary, required=True)
    sel, multi = selection_args(p)
    cmd = [binary] + sel + action_args(module, state) + ['--json']

    if module.check_mode and state == 'patched' and missing_loads(module):
        # The copy task before this one did not run in check mode: nothing to dry-run with.
        module.warn('check mode: %s not on the host yet (copied in a real run); '
                    'not dry-run, assuming it would be loaded' % ', '.join(missing_loads(module)))
        module.exit_json(changed=True, rc=0, cmd=cmd, sites=[], stderr='')

    rc, stdout, stderr = module.run_command(cmd)
    try:
        out = json.loads(stdout)
    except ValueError:
        module.fail_json(msg='livepatch exited %d without a JSON object: %s'
                         % (rc, (stderr or stdout).strip()[:2000]),
                         rc=rc, cmd=cmd, stdout=stdout, stderr=stderr)
    if not isinstance(out, dict):
        module.fail_json(msg='livepatch printed JSON that is not an object', rc=rc, cmd=cmd,
                         stdout=stdout, stderr=stderr)

    if multi and 'processes' in out:
        changed, failure = multi_result(out, rc, module.check_mode)
        result = dict(processes=out['processes'], summary=out.get('summary'),
                      status=(out.get('summary') or {}).get('text'))
    else:
        # Also a multi-process run that failed before it had a selection: an error object.
        changed, failure = single_result(out, rc, module.check_mode)
        result = dict(report=out)
        if out.get('status'):
            result['status'] = out['status']
    sites = sites_of(out, multi and 'processes' in out)
    result.update(changed=changed, rc=rc, cmd=cmd, sites=sites, stderr=stderr)
    if module._diff and sites:
        result['diff'] = make_diff(sites)
    if failure is not None or rc != 0:
        module.fail_json(msg=failure or 'livepatch exited %d' % rc, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
