// IncrementalAlterConfigs (key 44), versions 0-1: v1 is the first flexible version. Each config
// carries an operation (Kafka's OpType: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT) instead of the whole
// new config set that the older AlterConfigs sends.
import type { MessageSpec } from '../schema.js';

export const INCREMENTAL_ALTER_CONFIGS_REQUEST = {
  name: 'IncrementalAlterConfigsRequest',
  type: 'request',
  apiKey: 44,
  validVersions: '0-1',
  flexibleVersions: '1+',
  fields: [
    {
      name: 'Resources', type: '[]AlterConfigsResource', versions: '0+',
      fields: [
        { name: 'ResourceType', type: 'int8', versions: '0+' },
        { name: 'ResourceName', type: 'string', versions: '0+' },
        {
          name: 'Configs', type: '[]AlterableConfig', versions: '0+',
          fields: [
            { name: 'Name', type: 'string', versions: '0+' },
            { name: 'ConfigOperation', type: 'int8', versions: '0+' },
            { name: 'Value', type: 'string', versions: '0+', nullableVersions: '0+' },
          ],
        },
      ],
    },
    { name: 'ValidateOnly', type: 'bool', versions: '0+' },
  ],
} as const satisfies MessageSpec;

export const INCREMENTAL_ALTER_CONFIGS_RESPONSE = {
  name: 'IncrementalAlterConfigsResponse',
  type: 'response',
  apiKey: 44,
  validVersions: '0-1',
  flexibleVersions: '1+',
  fields: [
    { name: 'ThrottleTimeMs', type: 'int32', versions: '0+' },
    {
      name: 'Responses', type: '[]AlterConfigsResourceResponse', versions: '0+',
      fields: [
        { name: 'ErrorCode', type: 'int16', versions: '0+' },
        { name: 'ErrorMessage', type: 'string', versions: '0+', nullableVersions: '0+' },
        { name: 'ResourceType', type: 'int8', versions: '0+' },
        { name: 'ResourceName', type: 'string', versions: '0+' },
      ],
    },
  ],
} as const satisfies MessageSpec;
