export { NodeProcess, freePort, makeTempDir, RUNNEL_BIN, type NodeProcessOptions, type ExitStatus } from './nodeProcess.js';
