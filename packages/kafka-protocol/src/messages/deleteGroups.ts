// DeleteGroups (key 42), versions 0-2: v2 is the first flexible version.
import type { MessageSpec } from '../schema.js';

export const DELETE_GROUPS_REQUEST = {
  name: 'DeleteGroupsRequest',
  type: 'request',
  apiKey: 42,
  validVersions: '0-2',
  flexibleVersions: '2+',
  fields: [{ name: 'GroupsNames', type: '[]string', versions: '0+' }],
} as const satisfies MessageSpec;

export const DELETE_GROUPS_RESPONSE = {
  name: 'DeleteGroupsResponse',
  type: 'response',
  apiKey: 42,
  validVersions: '0-2',
  flexibleVersions: '2+',
  fields: [
    { name: 'ThrottleTimeMs', type: 'int32', versions: '0+' },
    {
      name: 'Results', type: '[]DeletableGroupResult', versions: '0+',
      fields: [
        { name: 'GroupId', type: 'string', versions: '0+' },
        { name: 'ErrorCode', type: 'int16', versions: '0+' },
      ],
    },
  ],
} as const satisfies MessageSpec;
