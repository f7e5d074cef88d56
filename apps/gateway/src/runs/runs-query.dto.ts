import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { NAME_PATTERN, NAME_RULE, RUN_ID_PATTERN, type RunStatus } from '@conveyor/contracts';

const RUN_STATUSES: RunStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const nameMessage = { message: `$property must be ${NAME_RULE}` };

export class RunsQueryDto {
  @ApiPropertyOptional({ description: 'only runs of this pipeline' })
  @IsOptional()
  @Matches(NAME_PATTERN, nameMessage)
  pipeline?: string;

  @ApiPropertyOptional({ enum: RUN_STATUSES })
  @IsOptional()
  @IsIn(RUN_STATUSES)
  status?: RunStatus;

  @ApiPropertyOptional({ description: 'only runs of resources with this name' })
  @IsOptional()
  @Matches(NAME_PATTERN, nameMessage)
  resource?: string;

  @ApiPropertyOptional({ description: 'only runs of resources of this resource definition' })
  @IsOptional()
  @Matches(NAME_PATTERN, nameMessage)
  type?: string;

  @ApiPropertyOptional({ default: 50, minimum: 1, maximum: 500 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(500)
  limit?: number;

  @ApiPropertyOptional({ description: 'only runs older than this run id (the next page: see the `Link` header)' })
  @IsOptional()
  @Matches(RUN_ID_PATTERN, { message: '$property must be a run id (26 lowercase letters and digits)' })
  before?: string;
}

/** `POST /runs/:id/rerun`: the whole run again, or (`failed: true`) only what did not succeed. */
export class RerunDto {
  @ApiPropertyOptional({ description: 'run only the steps that failed, were cancelled or skipped (and what needs them); carry the others over' })
  @IsOptional()
  @IsBoolean()
  failed?: boolean;
}

/** An approval step's approve or reject: an optional comment, recorded with the decision. */
export class DecisionDto {
  @ApiPropertyOptional({ description: 'recorded with the decision' })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  comment?: string;
}
