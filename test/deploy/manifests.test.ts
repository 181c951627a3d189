// The deployment files read as a user's tools would read them, checked against each other and
// against the node's own configuration rules (BrokerConfig, the same code `runnel node` runs): every
// Kubernetes manifest and the compose file parse; each pod's and service's effective configuration
// is valid; ports, probes, advertised listeners and the voters list agree. No engine or cluster is
// needed: what these files promise a running cluster is tested with real containers in
// containers.test.ts.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { BrokerConfig, parseProperties, type ListenerName } from '@runnel/common';

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

// Loose shapes: the tests below check what they read.
type Manifest = { kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };

function parseYaml(path: string): unknown[] {
  const documents = parseAllDocuments(read(path), { merge: true });
  for (const document of documents) expect(document.errors, `${path}: ${document.errors.join('; ')}`).toEqual([]);
  return documents.map((document) => document.toJS()).filter((value) => value !== null);
}

/** The Dockerfile's instructions as [keyword, arguments], continuation lines joined. */
function dockerfileInstructions(): Array<[string, string]> {
  const text = read('deploy/docker/Dockerfile').replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const space = line.indexOf(' ');
      return [line.slice(0, space).toUpperCase(), line.slice(space + 1).trim()];
    });
}

const IMAGE_CONFIG_FILE = '/etc/runnel/server.properties';
const imageProperties = () => parseProperties(read('deploy/docker/server.properties'), 'deploy/docker/server.properties');
const controlledShutdownMs = (config: BrokerConfig) => config.int('controlled.shutdown.timeout.ms');

describe('the image (deploy/docker)', () => {
  const instructions = dockerfileInstructions();
  const runtime = instructions.slice(instructions.findLastIndex(([keyword]) => keyword === 'FROM'));
  const argumentsOf = (keyword: string) => runtime.filter(([name]) => name === keyword).map(([, value]) => value);

  it('starts from node:20-bookworm-slim in both stages and runs as a non-root user', () => {
    expect(instructions.filter(([keyword]) => keyword === 'FROM').map(([, value]) => value.split(' ')[0])).toEqual(['node:20-bookworm-slim', 'node:20-bookworm-slim']);
    const user = argumentsOf('USER').at(-1);
    expect(user).toBe('runnel');
    expect(argumentsOf('RUN').join(' ')).toMatch(/useradd .*--uid 10001 .*runnel/);
  });

  it('copies every workspace package\'s manifest before the install, so the install layer sees them all', () => {
    const copied = instructions.filter(([keyword]) => keyword === 'COPY').map(([, value]) => value.split(' ')[0]);
    for (const name of readdirSync(join(root, 'packages'))) expect(copied, `COPY packages/${name}/package.json`).toContain(`packages/${name}/package.json`);
  });

  it('its own server.properties is a valid node configuration whose HTTP port the HEALTHCHECK asks, on /readyz', () => {
    const config = BrokerConfig.from({ file: imageProperties() });
    expect(config.logDir().startsWith(argumentsOf('VOLUME')[0]!)).toBe(true);
    const exposed = argumentsOf('EXPOSE')[0]!.split(' ').map(Number);
    for (const listener of config.listeners()) expect(exposed).toContain(listener.port);
    const healthcheck = JSON.parse(argumentsOf('HEALTHCHECK')[0]!.replace(/^.*CMD\s+/, '')) as string[];
    expect(healthcheck).toEqual(['node', '/opt/runnel/deploy/docker/healthcheck.mjs', IMAGE_CONFIG_FILE]);
    expect(read('deploy/docker/healthcheck.mjs')).toContain('/readyz');
    expect(JSON.parse(argumentsOf('CMD')[0]!)).toEqual(['node', '--config', IMAGE_CONFIG_FILE]);
    expect(argumentsOf('STOPSIGNAL')).toEqual(['SIGTERM']);
  });
});

describe('Kubernetes manifests (deploy/k8s)', () => {
  const files = readdirSync(join(root, 'deploy/k8s')).filter((name) => name.endsWith('.yaml'));
  const manifests = files.filter((name) => name !== 'kustomization.yaml').flatMap((name) => parseYaml(`deploy/k8s/${name}`) as Manifest[]);
  const only = (kind: string) => {
    const found = manifests.filter((manifest) => manifest.kind === kind);
    expect(found, `one ${kind}`).toHaveLength(1);
    return found[0]!;
  };
  const statefulSet = only('StatefulSet');
  const configMap = only('ConfigMap');
  const pdb = only('PodDisruptionBudget');
  const services = manifests.filter((manifest) => manifest.kind === 'Service');
  const headless = services.find((service) => service.metadata.name === statefulSet.spec.serviceName);
  const pod = statefulSet.spec.template;
  const container = pod.spec.containers[0];
  const replicas: number = statefulSet.spec.replicas;
  const containerPort = (name: string): number => {
    const port = container.ports.find((candidate: { name: string }) => candidate.name === name);
    expect(port, `container port '${name}'`).toBeDefined();
    return port.containerPort;
  };

  /** Pod `ordinal`'s effective configuration: the ConfigMap's file plus the container's RUNNEL_* environment, as the kubelet expands it. */
  function podConfig(ordinal: number): BrokerConfig {
    const podName = `${statefulSet.metadata.name}-${ordinal}`;
    const fieldValues: Record<string, string> = {
      'metadata.name': podName,
      'metadata.namespace': 'streaming',
      "metadata.labels['apps.kubernetes.io/pod-index']": String(ordinal),
    };
    const env: Record<string, string> = {};
    for (const variable of container.env as Array<{ name: string; value?: string; valueFrom?: { fieldRef: { fieldPath: string } } }>) {
      const raw = variable.value ?? fieldValues[variable.valueFrom!.fieldRef.fieldPath];
      expect(raw, `env ${variable.name}`).toBeDefined();
      env[variable.name] = raw!.replace(/\$\((\w+)\)/g, (_, name: string) => env[name] ?? `$(${name})`);
    }
    const file = parseProperties(configMap.data!['server.properties']!, 'ConfigMap runnel-config');
    return BrokerConfig.from({ file, env });
  }

  it('every file parses, and the kustomization lists every manifest', () => {
    const kustomization = parseYaml('deploy/k8s/kustomization.yaml')[0] as { resources: string[] };
    expect([...kustomization.resources].sort()).toEqual(files.filter((name) => name !== 'kustomization.yaml').sort());
    expect(services).toHaveLength(2);
  });

  it('each pod is a valid node whose id is its ordinal, in a voters list of the headless Service names', () => {
    expect(headless, `a Service named ${statefulSet.spec.serviceName}`).toBeDefined();
    expect(headless!.spec.clusterIP).toBe('None');
    // Voters must find each other before any of them is ready.
    expect(headless!.spec.publishNotReadyAddresses).toBe(true);
    expect(statefulSet.spec.podManagementPolicy).toBe('Parallel');
    for (let ordinal = 0; ordinal < replicas; ordinal++) {
      const config = podConfig(ordinal);
      expect(config.nodeId).toBe(ordinal);
      expect(config.roles()).toEqual({ broker: true, controller: true });
      const controllerPort = config.listener('CONTROLLER')!.port;
      expect(Object.fromEntries(config.quorumVoters())).toEqual(
        Object.fromEntries(Array.from({ length: replicas }, (_, id) => [id, `${statefulSet.metadata.name}-${id}.${headless!.metadata.name}:${controllerPort}`])),
      );
      for (const advertised of config.advertisedListeners()) {
        expect(advertised.host.startsWith(`${statefulSet.metadata.name}-${ordinal}.${headless!.metadata.name}`), `${advertised.name} advertises ${advertised.host}`).toBe(true);
        expect(advertised.port).toBe(config.listener(advertised.name)!.port);
      }
    }
  });

  it('container ports, Service ports and probes name the ports the listeners bind', () => {
    const config = podConfig(0);
    const portNames: Record<string, ListenerName> = { kafka: 'PLAINTEXT', grpc: 'GRPC', controller: 'CONTROLLER', replication: 'REPLICATION', http: 'HTTP' };
    for (const [name, listener] of Object.entries(portNames)) expect(containerPort(name), name).toBe(config.listener(listener)!.port);
    expect(container.ports).toHaveLength(config.listeners().length);
    for (const service of services) {
      expect(service.spec.selector).toEqual(pod.metadata.labels);
      for (const port of service.spec.ports) expect(port.port, `${service.metadata.name} port ${port.name}`).toBe(containerPort(port.targetPort));
    }
    const httpPort = config.listener('HTTP')!.port;
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(containerPort(container.readinessProbe.httpGet.port)).toBe(httpPort);
  });

  it('shutdown, disruption, placement and storage fit the quorum and the image', () => {
    const config = podConfig(0);
    // preStop waits for the controlled shutdown, which the grace period must outlast.
    expect(container.lifecycle.preStop.exec.command.join(' ')).toMatch(/kill -TERM 1.*while kill -0 1/);
    expect(pod.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(controlledShutdownMs(config));
    // A PDB that keeps a Raft majority running.
    expect(pdb.spec.selector.matchLabels).toEqual(pod.metadata.labels);
    expect(replicas - pdb.spec.maxUnavailable).toBeGreaterThanOrEqual(Math.floor(replicas / 2) + 1);
    const antiAffinity = pod.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0];
    expect(antiAffinity.topologyKey).toBe('kubernetes.io/hostname');
    expect(antiAffinity.labelSelector.matchLabels).toEqual(pod.metadata.labels);
    expect(container.resources.requests.cpu).toBeDefined();
    expect(container.resources.limits.memory).toBeDefined();
    // The image's user owns the volume; the config file is where the container's args look.
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, fsGroup: 10001 });
    const mountOf = (name: string) => container.volumeMounts.find((mount: { name: string }) => mount.name === name).mountPath as string;
    expect(config.logDir().startsWith(`${mountOf('data')}/`)).toBe(true);
    expect(statefulSet.spec.volumeClaimTemplates[0].metadata.name).toBe('data');
    expect(container.args).toEqual(['node', '--config', `${mountOf('config')}/server.properties`]);
    expect(pod.spec.volumes.find((volume: { name: string }) => volume.name === 'config').configMap.name).toBe(configMap.metadata.name);
  });
});

describe('compose (deploy/compose/compose.yaml)', () => {
  /** Compose's own interpolation of `${NAME:-default}` and `${NAME}`, from `variables`. */
  const interpolate = (text: string, variables: Record<string, string>) =>
    text.replace(/\$\{(\w+)(?::-([^}]*))?\}/g, (_, name: string, fallback: string | undefined) => variables[name] ?? fallback ?? '');
  const composeFile = (variables: Record<string, string>) => {
    const documents = parseAllDocuments(interpolate(read('deploy/compose/compose.yaml'), variables), { merge: true });
    for (const document of documents) expect(document.errors).toEqual([]);
    return documents[0]!.toJS() as { services: Record<string, any>; volumes: Record<string, unknown> };
  };
  const nodeConfig = (service: { environment: Record<string, string> }) => BrokerConfig.from({ file: imageProperties(), env: service.environment });

  it('three valid nodes whose voters are the services, with volumes, health checks and a grace period past the controlled shutdown', () => {
    const { services, volumes } = composeFile({});
    const names = Object.keys(services);
    expect(names).toHaveLength(3);
    for (const [name, service] of Object.entries(services)) {
      const config = nodeConfig(service);
      expect(name).toBe(`runnel-${config.nodeId}`);
      expect(service.hostname).toBe(name);
      expect(Object.fromEntries(config.quorumVoters())).toEqual(Object.fromEntries(names.map((voter) => [Number(voter.split('-')[1]), `${voter}:${config.listener('CONTROLLER')!.port}`])));
      expect(service.healthcheck.test).toEqual(['CMD', 'node', '/opt/runnel/deploy/docker/healthcheck.mjs', IMAGE_CONFIG_FILE]);
      const [volume, mountPath] = (service.volumes[0] as string).split(':');
      expect(Object.keys(volumes)).toContain(volume);
      expect(config.logDir().startsWith(`${mountPath}/`)).toBe(true);
      expect(Number.parseInt(service.stop_grace_period, 10) * 1000).toBeGreaterThan(controlledShutdownMs(config));
    }
  });

  it('client listeners are published at their own port numbers and advertised by a name the network and the host both use', () => {
    for (const variables of [{}, { RUNNEL_ADVERTISED_HOST: '203.0.113.7' }] as Array<Record<string, string>>) {
      const advertisedKafka = new Set<string>();
      for (const [name, service] of Object.entries(composeFile(variables).services)) {
        const config = nodeConfig(service);
        const published = new Map((service.ports as string[]).map((mapping) => mapping.split(':').map(Number) as [number, number]));
        for (const listener of ['PLAINTEXT', 'GRPC'] as const) {
          const advertised = config.advertisedListener(listener)!;
          expect(advertised.host).toBe(variables['RUNNEL_ADVERTISED_HOST'] ?? name);
          // One port number inside the network and on the host, so one advertised address serves both.
          expect(published.get(advertised.port), `${name} publishes ${listener}'s advertised port ${advertised.port}`).toBe(config.listener(listener)!.port);
        }
        expect(published.get(config.listener('HTTP')!.port)).toBe(config.listener('HTTP')!.port);
        for (const internal of ['REPLICATION', 'CONTROLLER'] as const) expect(config.advertisedListener(internal)!.host).toBe(name);
        advertisedKafka.add(`${config.advertisedListener('PLAINTEXT')!.host}:${config.advertisedListener('PLAINTEXT')!.port}`);
      }
      expect(advertisedKafka.size).toBe(3);
    }
  });
});
