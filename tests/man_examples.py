#!/usr/bin/python3
"""man_examples.py PAGE: prints the EXAMPLES of an mdoc page as a bash
script that runs them in order and fails on the first one that fails.

Each .Dl line is one command.  A comment line before it changes that:
  .\\" example: skip      not run (needs a real log file, a network, ...)
  .\\" example: follows   runs until stopped: started, given 2 s, killed
Assignments (NAME=...) run in the script itself, so later lines see them.
"""
import re
import sys

ESC = [(r'\(dq', '"'), (r'\(aq', "'"), (r'\e', '\\'), (r'\-', '-'), (r'\&', ''),
       (r'\(ti', '~'), (r'\(ha', '^'), (r'\(ga', '`'), (r'\|', '')]


def text(s):
    out = []
    i = 0
    while i < len(s):
        for k, v in ESC:
            if s.startswith(k, i):
                out.append(v)
                i += len(k)
                break
        else:
            out.append(s[i])
            i += 1
    return ''.join(out)


def main():
    lines = open(sys.argv[1]).read().split('\n')
    inside = False
    mark = None
    cmds = []
    for ln in lines:
        if ln.startswith('.Sh '):
            inside = ln.strip() == '.Sh EXAMPLES'
            continue
        if not inside:
            continue
        m = re.match(r'\.\\"\s*example:\s*(\w+)', ln)
        if m:
            mark = m.group(1)
            continue
        if ln.startswith('.Dl '):
            cmds.append((mark, text(ln[4:].strip())))
            mark = None
    print('set -a')
    for mark, c in cmds:
        q = c.replace("'", "'\\''")
        if mark == 'skip':
            print("echo '# skipped: %s'" % q)
        elif re.match(r'^[A-Za-z_][A-Za-z0-9_]*=', c) and ' ' not in c.split('=', 1)[0]:
            print(c)
        elif mark == 'follows':
            print("echo '$ %s'; timeout -s TERM 2 bash -c '%s' </dev/null; "
                  "rc=$?; [ $rc = 0 ] || [ $rc = 124 ] || { echo \"FAILED ($rc): %s\"; exit 1; }" % (q, q, q))
        else:
            print("echo '$ %s'; timeout 30 bash -c '%s' </dev/null || "
                  "{ echo \"FAILED ($?): %s\"; exit 1; }" % (q, q, q))
    print('exit 0')


main()
