import { Controller, Get, Query } from '@nestjs/common';
import { AuditService } from '../audit/audit.service.js';
import { Admin } from './admin-controller.js';
import { AuditQueryDto } from './dto.js';

@Admin('audit')
@Controller('admin/v1/audit-events')
export class AuditAdminController {
  constructor(private readonly audit: AuditService) {}

  @Get()
  list(@Query() q: AuditQueryDto) {
    return this.audit.page({
      tenantId: q.tenantId,
      actor: q.actor,
      action: q.action,
      since: q.since,
      until: q.until,
      cursor: q.cursor,
      limit: q.limit ?? 100,
    });
  }
}
