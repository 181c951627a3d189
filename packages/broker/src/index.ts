export { Node, type NodeAddresses, type NodeOptions } from './node.js';
export { LogManager } from './logManager.js';
export { ReplicaManager } from './replicaManager.js';
export { BrokerMetrics } from './metrics.js';
