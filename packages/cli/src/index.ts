export { buildProgram, main } from './main.js';
export { portsOf, localNodeProperties, localQuorumVoters, localBootstrap, readOrCreateClusterId, LOCAL_TIMINGS, type LocalNodeOptions } from './commands/cluster.js';
export { clusterStatusJson, renderClusterStatus, renderElection, leaderCounts, partitionHealth } from './commands/status.js';
export { loadBrokerConfig, type ConfigOptions } from './commands/config.js';
