import type { Provider, Type } from '@nestjs/common';
import { MetricsController } from './metrics.controller.js';
import { MetricsService } from './metrics.service.js';

/** Prometheus `/metrics`; spread into AppModule. The HTTP middleware is installed in bootstrap.ts. */
export const METRICS_CONTROLLERS: Array<Type<unknown>> = [MetricsController];
export const METRICS_PROVIDERS: Provider[] = [MetricsService];
