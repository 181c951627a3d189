#!/usr/bin/env node
// Runs the whole vitest suite and ends with one plain line, `N passed, N failed`, counted from
// vitest's JSON report, so a run that executed no test is visible as such. Extra arguments go to
// vitest (e.g. `npm test -- packages/storage`).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const report = join(root, '.vitest-results.json');
rmSync(report, { force: true });

// vitest strips types without checking them: type-check the test files first, so a test that no
// longer matches the code it exercises fails here rather than passing by accident.
const typecheck = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'test/tsconfig.json'], { cwd: root, stdio: 'inherit' });
if (typecheck.status !== 0) {
  process.stdout.write('\ntest files do not type-check (tsc -p test/tsconfig.json)\n0 passed, 1 failed\n');
  process.exit(1);
}

const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const result = spawnSync(
  process.execPath,
  [vitest, 'run', '--config', 'test/vitest.config.ts', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)],
  { cwd: root, stdio: 'inherit' },
);

let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync(report)) {
  const summary = JSON.parse(readFileSync(report, 'utf8'));
  passed = summary.numPassedTests ?? 0;
  // A file that failed outside any test (an import error, a failing hook) counts as one failure.
  const brokenFiles = (summary.testResults ?? []).filter(
    (file) => file.status === 'failed' && !(file.assertionResults ?? []).some((test) => test.status === 'failed'),
  ).length;
  failed = (summary.numFailedTests ?? 0) + brokenFiles;
  skipped = (summary.numPendingTests ?? 0) + (summary.numTodoTests ?? 0);
} else {
  failed = 1;
}
process.stdout.write(`\n${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}\n`);
const exitCode = result.status ?? 1;
process.exit(exitCode !== 0 ? exitCode : failed > 0 || passed === 0 ? 1 : 0);
