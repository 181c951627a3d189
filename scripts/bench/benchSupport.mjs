// What a benchmark script that runs a local cluster needs besides its own measurements: integer
// options checked with a usage error, the built packages of the repository it measures, and the
// cluster's end (node output kept beside its data, the data removed unless asked to keep it).
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** A reader of integer options from parsed `values`: a bad one is a usage error (exit 2) naming it. */
export function integerOptions(script, values) {
  return (name, min = 1) => {
    const raw = values[name];
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) {
      process.stderr.write(`${script}: --${name} must be an integer >= ${min}, got ${raw}\n`);
      process.exit(2);
    }
    return value;
  };
}

/** The built `dist/index.js` of each package of `repo` (default this repository), imported; exits 2 if one is missing. */
export async function importBuilt(script, repoOption, names) {
  const repo = resolve(repoOption ?? new URL('../..', import.meta.url).pathname);
  const modules = {};
  for (const name of names) {
    const dist = join(repo, 'packages', name, 'dist', 'index.js');
    if (!existsSync(dist)) {
      process.stderr.write(`${script}: ${dist} is missing: build ${repo} first (npm run build)\n`);
      process.exit(2);
    }
    modules[name] = await import(pathToFileURL(dist).href);
  }
  return { repo, modules };
}

/** Stops `cluster` after writing each node's output to its data dir; removes `dir` only after a good run it created. */
export async function finishCluster(script, cluster, dir, { ok, keep, dirGiven }) {
  if (cluster !== undefined) {
    for (const node of cluster.nodes) await writeFile(join(node.dataDir, 'process-output.log'), node.logs()).catch(() => undefined);
    await cluster.stop().catch(() => cluster.kill());
  }
  if (ok && !keep && !dirGiven) await rm(dir, { recursive: true, force: true });
  else process.stderr.write(`${script}: data and node output kept in ${dir}\n`);
}

/** On Ctrl-C: kill the cluster `current()` returns (if any), keep `dir`, exit 130. */
export function killOnInterrupt(script, dir, current) {
  let interrupted = false;
  process.on('SIGINT', async () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`${script}: interrupted; data kept in ${dir}\n`);
    await current()?.kill().catch(() => undefined);
    process.exit(130);
  });
}

/** The value at `fraction` (0..1) of an ascending `sorted` list; null when it is empty. */
export function percentile(sorted, fraction) {
  return sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
}
