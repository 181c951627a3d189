// Hosts made of Linux network namespaces: one namespace per host, each with one veth link to a
// bridge that lives in a namespace of its own (the switch), so nothing is added to the machine's
// own network namespace and no packet of a test leaves the namespaces it created. Cutting a host's
// link is `ip link set … down` on either end of its veth pair: at the switch (a pulled cable: the
// host sees no carrier, its peers' packets go nowhere) or on the host (its interface down).
//
// Every namespace is named `rmh-<pid>-<label>`, <pid> the process that created it, so that a run
// can find and remove what an earlier, killed run left behind (`removeLeftoverNamespaces`).
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Prefix of every namespace this suite creates ("runnel multihost"). */
export const NAMESPACE_PREFIX = 'rmh-';
const IP_TIMEOUT_MS = 10_000;
const SWITCH_LABEL = 'switch';
const BRIDGE = 'br0';
/** The interface each host has, the host end of its veth pair. */
const HOST_INTERFACE = 'eth0';

export type LinkSide = 'switch' | 'host';

export interface NamespaceHost {
  label: string;
  namespace: string;
  address: string;
  /** The switch end of the host's veth pair (in the switch namespace). */
  switchPort: string;
}

/** Runs `ip args…`; rejects with ip's stderr when it fails. */
export function ip(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: IP_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`ip ${args.join(' ')}: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
  });
}

/**
 * Why network namespaces cannot be used here, or undefined when they can: needs root, the `ip`
 * command (iproute2), and a kernel that lets this process create one (tried, then removed).
 * Synchronous, for deciding at collection time whether the suite runs.
 */
export function namespacesUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces need root (this runs as uid ' + String(process.getuid?.()) + ')';
  if (spawnSync('ip', ['-V'], { stdio: 'ignore', timeout: IP_TIMEOUT_MS }).status !== 0) return "the 'ip' command (iproute2) is not installed: apt-get install -y iproute2";
  const probe = `${NAMESPACE_PREFIX}${process.pid}-probe`;
  const added = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8', timeout: IP_TIMEOUT_MS });
  if (added.status !== 0) return `'ip netns add' failed: ${(added.stderr || added.error?.message || '').trim()}`;
  spawnSync('ip', ['netns', 'del', probe], { stdio: 'ignore', timeout: IP_TIMEOUT_MS });
  return undefined;
}

async function listNamespaces(): Promise<string[]> {
  const listed = await ip('netns', 'list');
  return listed.split('\n').map((line) => line.split(' ')[0]!).filter((name) => name !== '');
}

/** SIGKILLs every process in `namespace` (only processes this suite started live there), then deletes it. */
async function deleteNamespace(namespace: string): Promise<void> {
  const pids = await ip('netns', 'pids', namespace).catch(() => '');
  for (const pid of pids.split('\n').map(Number).filter((pid) => Number.isInteger(pid) && pid > 0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await ip('netns', 'del', namespace);
}

/**
 * Deletes the namespaces (and SIGKILLs their processes) of earlier runs whose creating process is
 * gone; a run still alive keeps its own. Returns the names removed.
 */
export async function removeLeftoverNamespaces(): Promise<string[]> {
  const removed: string[] = [];
  for (const namespace of await listNamespaces()) {
    const match = new RegExp(`^${NAMESPACE_PREFIX}(\\d+)-`).exec(namespace);
    if (match === null) continue;
    const owner = Number(match[1]);
    if (owner !== process.pid && existsSync(`/proc/${owner}`)) continue;
    await deleteNamespace(namespace);
    removed.push(namespace);
  }
  return removed;
}

export class NamespaceNetwork {
  private destroyed: Promise<void> | undefined;

  private constructor(
    readonly switchNamespace: string,
    private readonly hosts: Map<string, NamespaceHost>,
  ) {}

  /**
   * Creates the switch namespace with its bridge, and one namespace per label with the address
   * `${subnetPrefix}.${index + 1}` (/24) on its link to the bridge. On failure removes what it made.
   */
  static async create(labels: readonly string[], subnetPrefix = '10.213.0'): Promise<NamespaceNetwork> {
    const name = (label: string) => `${NAMESPACE_PREFIX}${process.pid}-${label}`;
    const hosts = new Map(labels.map((label, index): [string, NamespaceHost] => [label, { label, namespace: name(label), address: `${subnetPrefix}.${index + 1}`, switchPort: `port${index + 1}` }]));
    const network = new NamespaceNetwork(name(SWITCH_LABEL), hosts);
    try {
      await ip('netns', 'add', network.switchNamespace);
      await ip('-n', network.switchNamespace, 'link', 'add', BRIDGE, 'type', 'bridge');
      await ip('-n', network.switchNamespace, 'link', 'set', BRIDGE, 'up');
      for (const host of hosts.values()) {
        await ip('netns', 'add', host.namespace);
        await ip('-n', host.namespace, 'link', 'set', 'lo', 'up');
        await ip('-n', network.switchNamespace, 'link', 'add', host.switchPort, 'type', 'veth', 'peer', 'name', HOST_INTERFACE, 'netns', host.namespace);
        await ip('-n', network.switchNamespace, 'link', 'set', host.switchPort, 'master', BRIDGE, 'up');
        await ip('-n', host.namespace, 'addr', 'add', `${host.address}/24`, 'dev', HOST_INTERFACE);
        await ip('-n', host.namespace, 'link', 'set', HOST_INTERFACE, 'up');
      }
    } catch (error) {
      await network.destroy().catch(() => undefined);
      throw error;
    }
    return network;
  }

  host(label: string): NamespaceHost {
    const host = this.hosts.get(label);
    if (host === undefined) throw new RangeError(`no host '${label}' (hosts: ${[...this.hosts.keys()].join(', ')})`);
    return host;
  }

  /** The command prefix that runs a program inside `label`'s namespace (ip execs it in place: same pid). */
  launcher(label: string): string[] {
    return ['ip', 'netns', 'exec', this.host(label).namespace];
  }

  /** Sets `label`'s link down at `side` (the switch port or the host's own interface). */
  async cutLink(label: string, side: LinkSide): Promise<void> {
    await this.setLink(label, side, 'down');
  }

  /** Sets both ends of `label`'s link up again. */
  async restoreLink(label: string): Promise<void> {
    await this.setLink(label, 'host', 'up');
    await this.setLink(label, 'switch', 'up');
  }

  /** Whether both ends of `label`'s link are administratively up. */
  async linkUp(label: string): Promise<boolean> {
    const host = this.host(label);
    const [hostEnd, switchEnd] = await Promise.all([ip('-n', host.namespace, '-o', 'link', 'show', HOST_INTERFACE), ip('-n', this.switchNamespace, '-o', 'link', 'show', host.switchPort)]);
    return [hostEnd, switchEnd].every((line) => /<[^>]*\bUP\b[^>]*>/.test(line));
  }

  private async setLink(label: string, side: LinkSide, state: 'up' | 'down'): Promise<void> {
    const host = this.host(label);
    if (side === 'host') await ip('-n', host.namespace, 'link', 'set', HOST_INTERFACE, state);
    else await ip('-n', this.switchNamespace, 'link', 'set', host.switchPort, state);
  }

  /** Kills what still runs in the namespaces and deletes them all (the veth pairs and the bridge go with them). Idempotent. */
  destroy(): Promise<void> {
    this.destroyed ??= (async () => {
      const mine = new Set(await listNamespaces());
      const namespaces = [...[...this.hosts.values()].map((host) => host.namespace), this.switchNamespace].filter((namespace) => mine.has(namespace));
      const results = await Promise.allSettled(namespaces.map((namespace) => deleteNamespace(namespace)));
      const failed = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (failed.length > 0) throw new Error(`could not delete every namespace: ${failed.map((result) => (result.reason as Error).message).join('; ')}`);
    })();
    return this.destroyed;
  }
}
