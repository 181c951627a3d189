export { NodeProcess, freePort, freePorts, makeTempDir, RUNNEL_BIN, type NodeProcessOptions, type CreateNodeOptions, type NodePorts, type ExitStatus } from './nodeProcess.js';
export { LocalCluster, type LocalClusterOptions, type NodePlacement } from './localCluster.js';
export { FaultProxy, type FaultProxyOptions } from './faultProxy.js';
export { KafkaWireClient } from './kafkaWireClient.js';
export * from './chaos/index.js';
