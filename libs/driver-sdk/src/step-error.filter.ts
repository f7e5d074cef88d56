import { Catch, type RpcExceptionFilter } from '@nestjs/common';
import { throwError, type Observable } from 'rxjs';

/**
 * Hands a driver's thrown error to the StepRunner as it was thrown. Nest's default RPC filter
 * replaces every error that is not an RpcException with `{status, message: 'Internal server
 * error'}`, which would lose the message that the step's failure must show.
 */
@Catch()
export class StepErrorFilter implements RpcExceptionFilter<unknown> {
  catch(exception: unknown): Observable<never> {
    return throwError(() => exception);
  }
}
