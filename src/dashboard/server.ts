/**
 * Placeholder replaced by the dashboard implementation.
 */
import type { ExecutorEvents } from '../core/events.js';
import type { DashboardHandle } from '../executors/base.js';

export interface DashboardOptions {
  label: string;
  port?: number;
  host?: string;
}

export function startDashboard(
  _events: ExecutorEvents,
  _options: DashboardOptions,
): Promise<DashboardHandle> {
  return Promise.reject(new Error('The dashboard is not built yet.'));
}
