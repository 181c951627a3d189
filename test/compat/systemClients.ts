// The Kafka clients that come from Debian rather than npm (kcat; kafka-python and
// confluent-kafka-python for the system Python), whether this machine has them, and what a suite
// does when it does not: under RUNNEL_REQUIRE_SYSTEM_TOOLS=1 (CI, where .ci/run installs them)
// their absence fails the suite; elsewhere (a laptop with only Node and npm) the suite is skipped
// with one line naming what to install, so `npm test` still passes there.
import { spawnSync } from 'node:child_process';
import { describe, it } from 'vitest';

/** Debian's Python: its dist-packages hold python3-kafka and python3-confluent-kafka, which a pyenv or venv python3 first on PATH would not see. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export interface SystemClient {
  /** What the suites call it. */
  readonly name: string;
  /** The Debian package that brings it. */
  readonly debianPackage: string;
  /** Runs quickly and exits 0 exactly when the client is usable. */
  readonly probe: readonly [command: string, ...args: string[]];
}

export const KCAT: SystemClient = { name: 'kcat', debianPackage: 'kcat', probe: ['kcat', '-V'] };
export const KAFKA_PYTHON: SystemClient = { name: 'kafka-python', debianPackage: 'python3-kafka', probe: [SYSTEM_PYTHON, '-c', 'import kafka'] };
export const CONFLUENT_KAFKA_PYTHON: SystemClient = {
  name: 'confluent-kafka-python',
  debianPackage: 'python3-confluent-kafka',
  probe: [SYSTEM_PYTHON, '-c', 'import confluent_kafka'],
};

const presence = new Map<SystemClient, boolean>();

export function isInstalled(client: SystemClient): boolean {
  let present = presence.get(client);
  if (present === undefined) {
    const [command, ...args] = client.probe;
    const probe = spawnSync(command, args, { stdio: 'ignore', timeout: 10_000 });
    present = probe.status === 0;
    presence.set(client, present);
  }
  return present;
}

export const systemToolsRequired = (): boolean => process.env.RUNNEL_REQUIRE_SYSTEM_TOOLS === '1';

/**
 * `describe(title, body)` when every one of `clients` is installed. Otherwise, with
 * RUNNEL_REQUIRE_SYSTEM_TOOLS=1, a suite whose one test fails naming the missing packages; without
 * it, the suite skipped and one line on stderr saying what to install.
 */
export function describeWithSystemClients(title: string, clients: readonly SystemClient[], body: () => void): void {
  const missing = clients.filter((client) => !isInstalled(client));
  const names = missing.map((client) => client.name).join(', ');
  const install = `apt-get install -y ${missing.map((client) => client.debianPackage).join(' ')}`;
  describeRequiring(title, missing.length === 0 ? undefined : `${names} not installed (${install})`, body);
}

/**
 * `describe(title, body)` when `missing` is undefined; otherwise `missing` says what this machine
 * lacks for the suite, and with RUNNEL_REQUIRE_SYSTEM_TOOLS=1 the suite is one failing test saying
 * it, without it the suite is skipped with one line on stderr saying it.
 */
export function describeRequiring(title: string, missing: string | undefined, body: () => void): void {
  if (missing === undefined) {
    describe(title, body);
    return;
  }
  if (systemToolsRequired()) {
    describe(title, () => {
      it('has what it needs', () => {
        throw new Error(`${missing}, and RUNNEL_REQUIRE_SYSTEM_TOOLS=1 requires it`);
      });
    });
    return;
  }
  // Skipped only where the machine lacks something and the run did not ask for it (a laptop with
  // only Node and npm, as the issue allows): the line says what is missing. CI sets
  // RUNNEL_REQUIRE_SYSTEM_TOOLS=1 (.ci/run installs the clients and runs as root), so there this never skips.
  process.stderr.write(`skipping "${title}": ${missing}\n`);
  describe.skip(title, body);
}
