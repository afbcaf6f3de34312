#!/usr/bin/env python3
"""Feature maps against the linear target (docs/benchmarks.md, "Feature maps").

    python3 bench/feature_table.py RLFEED FILE[,FILE...] SEEDS [--jobs N] [--only A,B]
                                   [-- EXTRA...]

For each CSV: the mean progressive accuracy over seeds 1..SEEDS of a grid
of linear bandits (the learner and explorer settings a person would tune),
the linear full-information ceiling (default ridge told every label), the
target "best linear bandit + half its distance to full information", and
every feature-map head of FEATURES below (or those --only names; "auto" is
the default portfolio), marked + when it reaches the target. Every other
cell is one head (--portfolio off). EXTRA arguments (e.g. --base weak) go to
every run. Prints one line per file, then a JSON object with every mean.
"""
import concurrent.futures
import json
import statistics
import subprocess
import sys

LINEAR = {
    'ridge': [],
    'ridge.eps05': ['--epsilon', '0.05'],
    'ridge.ucb.25': ['--explorer', 'ucb', '--alpha', '0.25'],
    'ridge.ucb.5': ['--explorer', 'ucb', '--alpha', '0.5'],
    'ridge.ucb1': ['--explorer', 'ucb', '--alpha', '1'],
    'ridge.igw100': ['--explorer', 'igw', '--gamma', '100'],
    'ridge.igw1000': ['--explorer', 'igw'],
    'iwr.1': ['--learner', 'iwr', '--learning-rate', '0.1'],
    'iwr.5': ['--learner', 'iwr', '--learning-rate', '0.5'],
}

FEATURES = {
    'ridge.quad': ['--features', 'quad'],
    'iwr.quad': ['--learner', 'iwr', '--features', 'quad'],
    'ridge.rff64.bw0.5': ['--features', 'rff', '--rff-dim', '64', '--bandwidth', '0.5'],
    'ridge.rff64.bw1': ['--features', 'rff', '--rff-dim', '64', '--bandwidth', '1'],
    'ridge.rff64.bw2': ['--features', 'rff', '--rff-dim', '64', '--bandwidth', '2'],
    'ridge.rff128.bw1': ['--features', 'rff', '--rff-dim', '128', '--bandwidth', '1'],
    'ridge.rffn64.bw1': ['--features', 'rff_norm', '--rff-dim', '64', '--bandwidth', '1'],
    'iwr.rff256.bw0.5': ['--learner', 'iwr', '--features', 'rff', '--rff-dim', '256',
                         '--bandwidth', '0.5'],
    'iwr.rff256.bw1': ['--learner', 'iwr', '--features', 'rff', '--rff-dim', '256',
                       '--bandwidth', '1'],
    'iwr.rff256.bw2': ['--learner', 'iwr', '--features', 'rff', '--rff-dim', '256',
                       '--bandwidth', '2'],
    'ridge.rff32.bw1': ['--features', 'rff', '--rff-dim', '32', '--bandwidth', '1'],
    'ridge.rff64.bw0.25': ['--features', 'rff', '--rff-dim', '64', '--bandwidth', '0.25'],
    'ridge.rffn64.bw0.5': ['--features', 'rff_norm', '--rff-dim', '64', '--bandwidth', '0.5'],
    'iwr.rff256.bw0.25': ['--learner', 'iwr', '--features', 'rff', '--rff-dim', '256',
                          '--bandwidth', '0.25'],
    'ridge.quad.ucb.5': ['--features', 'quad', '--explorer', 'ucb', '--alpha', '0.5'],
    'auto': [],
}


def run(rl, path, seed, args, full):
    cmd = [rl, 'bench', 'learn', '--data', path, '--seed', str(seed)] + args
    if not full:
        cmd.append('--no-full')
    p = subprocess.run(cmd, capture_output=True, text=True)
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        return None  # e.g. quad past its dim cap
    j = json.loads(lines[-1])
    return j['progressive_accuracy'], j['full_info_accuracy']


def main():
    argv = sys.argv[1:]
    if not argv or argv[0].startswith("-"):
        print(__doc__.strip(), file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    extra = []
    if '--' in argv:
        extra = argv[argv.index('--') + 1:]
        argv = argv[:argv.index('--')]
    jobs = 2
    if '--jobs' in argv:
        i = argv.index('--jobs')
        jobs = int(argv[i + 1])
        del argv[i:i + 2]
    features = FEATURES
    if '--only' in argv:
        i = argv.index('--only')
        features = {k: FEATURES[k] for k in argv[i + 1].split(',')}
        del argv[i:i + 2]
    rl, files, n_seeds = argv[0], argv[1].split(','), int(argv[2])
    seeds = range(1, n_seeds + 1)
    out = {}
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        for f in files:
            todo = {}
            for name, args in list(LINEAR.items()) + list(features.items()):
                for s in seeds:
                    full = name == 'ridge'
                    one = [] if name == 'auto' else ['--portfolio', 'off']
                    todo[(name, s)] = ex.submit(run, rl, f, s, args + one + extra, full)
            acc, full = {}, []
            for (name, s), fut in todo.items():
                r = fut.result()
                if r is None:
                    acc.setdefault(name, None)
                    continue
                if acc.get(name, []) is not None:
                    acc.setdefault(name, []).append(r[0])
                if name == 'ridge':
                    full.append(r[1])
            mean = {k: (statistics.mean(v) if v else None) for k, v in acc.items()}
            best = max(mean[k] for k in LINEAR if mean[k] is not None)
            fi = statistics.mean(full)
            target = best + 0.5 * (fi - best)
            name = f.split('/')[-1]
            out[name] = {'mean': mean, 'full': fi, 'best_linear': best, 'target': target}
            cells = []
            for k in features:
                v = mean[k]
                cells.append(f'{k}=' + ('n/a' if v is None else
                                        f'{v:.3f}' + ('+' if v >= target else '')))
            print(f'{name} best_linear={best:.3f} full={fi:.3f} target={target:.3f} '
                  + ' '.join(cells), flush=True)
    print(json.dumps(out))


if __name__ == '__main__':
    sys.exit(main())
