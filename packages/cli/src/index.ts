export { buildProgram, main } from './main.js';
export { portsOf, localNodeProperties } from './commands/cluster.js';
