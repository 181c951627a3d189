// What the container tests need from this machine: a Docker engine, and Runnel's image built from
// the current sources (scripts/build-image.mjs tags it runnel:<digest of its inputs>, so a stale
// image is told from a current one). Neither is built here, inside a test timeout: .ci/run starts
// the engine and builds the image before `npm test`. Without them, under
// RUNNEL_REQUIRE_SYSTEM_TOOLS=1 (CI) the suite fails saying what is missing; elsewhere it is skipped
// with one line saying why, as the Kafka compat suite does for its Debian clients.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeRequiring } from '../compat/systemClients.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function dockerEngineAnswers(): boolean {
  return spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

/** The tag the current sources build to, if the engine has that image; else why not. */
function currentImage(): { tag: string } | { missing: string } {
  if (!dockerEngineAnswers()) return { missing: 'no Docker engine answers (`docker version` failed): install docker.io and start dockerd' };
  const printed = spawnSync(process.execPath, ['scripts/build-image.mjs', '--print-tag'], { cwd: root, encoding: 'utf8', timeout: 30_000 });
  const tag = printed.stdout?.trim();
  if (printed.status !== 0 || !tag) return { missing: `the base image is not built (${printed.stderr?.trim()}): run node scripts/build-image.mjs` };
  const present = spawnSync('docker', ['image', 'inspect', tag], { stdio: 'ignore', timeout: 10_000 }).status === 0;
  return present ? { tag } : { missing: `image ${tag} (the current sources) is not built: run node scripts/build-image.mjs` };
}

/** `describe(title, body(imageTag))` when the current image is there; otherwise failed or skipped by describeRequiring, as the header says. */
export function describeWithRunnelImage(title: string, body: (imageTag: string) => void): void {
  const image = currentImage();
  describeRequiring(title, 'missing' in image ? `${image.missing} (.ci/run prepares the engine and the image)` : undefined, () => body('tag' in image ? image.tag : ''));
}
