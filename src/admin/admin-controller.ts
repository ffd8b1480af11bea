import { UseGuards, UseInterceptors, UsePipes, ValidationPipe } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { AdminGuard } from './admin-auth.js';
import { IdempotencyInterceptor } from './admin-http.js';

const validation = new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true });

/** Every admin controller: bearer-guarded, validated, idempotent creates. */
export const Admin =
  (tag: string): ClassDecorator =>
  (target) => {
    ApiTags(`admin: ${tag}`)(target);
    ApiBearerAuth()(target);
    UseGuards(AdminGuard)(target);
    UsePipes(validation)(target);
    UseInterceptors(IdempotencyInterceptor)(target);
  };
