import { ConfigError } from '@conveyor/config';
import { LABELS } from './build-containers';

const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;

/**
 * Extra labels for every build container, from CONVEYOR_CONTAINER_LABELS (`key=value,key=value`):
 * lets an operator (or a test suite) find the containers of one installation. The labels that
 * tie a container to its run (conveyor.run, .agent, .machine, .managed) cannot be overridden.
 */
export function containerLabelsFromEnv(env: Record<string, string | undefined> = process.env): Record<string, string> {
  const raw = env.CONVEYOR_CONTAINER_LABELS?.trim();
  const labels: Record<string, string> = {};
  if (!raw) return labels;
  const reserved = new Set<string>(Object.values(LABELS));
  for (const pair of raw.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = pair.indexOf('=');
    const key = (eq < 0 ? pair : pair.slice(0, eq)).trim();
    const value = eq < 0 ? '' : pair.slice(eq + 1).trim();
    if (!LABEL_KEY.test(key)) throw new ConfigError(`CONVEYOR_CONTAINER_LABELS=${raw}: "${key}" is not a label key`);
    if (reserved.has(key)) throw new ConfigError(`CONVEYOR_CONTAINER_LABELS=${raw}: ${key} is set by Conveyor itself`);
    labels[key] = value;
  }
  return labels;
}
