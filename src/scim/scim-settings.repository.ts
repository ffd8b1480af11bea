import { Injectable } from '@nestjs/common';
import type { Tx } from '../database/database.js';

/** Per-tenant overrides; a key that is present is written (null: back to the global default), an absent one is kept. */
export interface ScimSettingsChange {
  rateLimitPerMinute?: number | null;
  guardEnabled?: boolean | null;
  guardPercent?: number | null;
  guardWindowSeconds?: number | null;
  guardMinCount?: number | null;
}

/** `scim_settings`: one row per tenant that overrides a SCIM default. The table's CHECK constraints (23514) bound the values. */
@Injectable()
export class ScimSettingsRepository {
  async upsert(tx: Tx, tenantId: string, s: ScimSettingsChange): Promise<void> {
    await tx.query(
      `INSERT INTO scim_settings (tenant_id, rate_limit_per_minute, guard_enabled, guard_percent, guard_window_seconds, guard_min_count)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (tenant_id) DO UPDATE SET
         rate_limit_per_minute = CASE WHEN $7 THEN EXCLUDED.rate_limit_per_minute ELSE scim_settings.rate_limit_per_minute END,
         guard_enabled = CASE WHEN $8 THEN EXCLUDED.guard_enabled ELSE scim_settings.guard_enabled END,
         guard_percent = CASE WHEN $9 THEN EXCLUDED.guard_percent ELSE scim_settings.guard_percent END,
         guard_window_seconds = CASE WHEN $10 THEN EXCLUDED.guard_window_seconds ELSE scim_settings.guard_window_seconds END,
         guard_min_count = CASE WHEN $11 THEN EXCLUDED.guard_min_count ELSE scim_settings.guard_min_count END,
         updated_at = now()`,
      [
        tenantId,
        s.rateLimitPerMinute ?? null,
        s.guardEnabled ?? null,
        s.guardPercent ?? null,
        s.guardWindowSeconds ?? null,
        s.guardMinCount ?? null,
        'rateLimitPerMinute' in s,
        'guardEnabled' in s,
        'guardPercent' in s,
        'guardWindowSeconds' in s,
        'guardMinCount' in s,
      ],
    );
  }
}
