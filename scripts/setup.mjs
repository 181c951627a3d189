#!/usr/bin/env node
// Brings a fresh clone to a runnable state with nothing but Node.js and npm: installs the pnpm
// workspace (pnpm comes from the npm registry through npx), generates protobuf types and
// compiles TypeScript. Each step is skipped when its inputs have not changed, so `npm start` and
// `npm test` stay fast after the first run.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, readdirSync, statSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const PNPM = 'pnpm@9.15.9';

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (result.status !== 0) {
    process.stderr.write(`setup: '${command} ${args.join(' ')}' failed (exit ${result.status ?? result.signal})\n`);
    process.exit(result.status ?? 1);
  }
}

function digestOf(paths) {
  const hash = createHash('sha256');
  for (const path of paths) {
    if (existsSync(path)) hash.update(path).update(readFileSync(path));
  }
  return hash.digest('hex');
}

function install() {
  const manifests = [join(root, 'pnpm-lock.yaml'), join(root, 'package.json'), join(root, 'pnpm-workspace.yaml')];
  for (const name of readdirSync(join(root, 'packages'))) manifests.push(join(root, 'packages', name, 'package.json'));
  const stampPath = join(root, 'node_modules', '.runnel-install-stamp');
  const digest = digestOf(manifests);
  if (existsSync(stampPath) && readFileSync(stampPath, 'utf8') === digest) return;
  const frozen = existsSync(join(root, 'pnpm-lock.yaml')) && process.env.CI ? ['--frozen-lockfile'] : [];
  run('npx', ['--yes', PNPM, 'install', ...frozen]);
  writeFileSync(stampPath, digestOf(manifests));
}

function newestMtime(dir, suffix) {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path, suffix));
    else if (entry.name.endsWith(suffix)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function generateProtoTypes() {
  const protoDir = join(root, 'proto');
  const outDir = join(root, 'packages', 'common', 'src', 'generated');
  const stamp = join(outDir, '.stamp');
  const newestProto = newestMtime(protoDir, '.proto');
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= newestProto) return;
  mkdirSync(outDir, { recursive: true });
  const protos = readdirSync(join(protoDir, 'runnel', 'v1')).filter((f) => f.endsWith('.proto')).map((f) => `runnel/v1/${f}`);
  run(process.execPath, [
    join(root, 'node_modules', '@grpc', 'proto-loader', 'build', 'bin', 'proto-loader-gen-types.js'),
    ...protos,
    '--longs=Number', '--enums=String', '--defaults', '--oneofs', '--grpcLib=@grpc/grpc-js',
    '--importFileExtension=.js', `--outDir=${outDir}`, `--includeDirs=${protoDir}`,
  ]);
  // One module that re-exports every message type, so packages can `import type { ClientApi }`.
  const typesDir = join(outDir, 'runnel', 'v1');
  const modules = readdirSync(typesDir).filter((f) => f.endsWith('.ts') && f !== 'index.ts');
  writeFileSync(join(typesDir, 'index.ts'), modules.map((f) => `export type * from './${f.replace(/\.ts$/, '.js')}';`).join('\n') + '\n');
  writeFileSync(stamp, '');
}

install();
if (process.argv.includes('--build')) {
  generateProtoTypes();
  // No root tsconfig.json (the top level is kept to the layout in DESIGN.md): build every package.
  const projects = readdirSync(join(root, 'packages')).map((name) => join('packages', name));
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', ...projects]);
}
