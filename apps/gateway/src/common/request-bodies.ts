import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { NAME_PATTERN, NAME_RULE, STEP_ID_PATTERN, type Forge, type JsonObject, type MatrixSpec, type StepWhen, type TriggerEvent, type TriggerSource } from '@conveyor/contracts';

/*
 * The gateway's request bodies: what its HTTP API accepts, validated by class-validator and
 * described by Swagger. Not a wire contract of drivers (kept out of @conveyor/contracts, which
 * the driver SDK package carries).
 */

/** Limits that keep one request from filling the store; the body limit itself is set on the HTTP server. */
export const LIMITS = {
  descriptionLength: 1024,
  stepNameLength: 200,
  maxSteps: 50,
  maxRetries: 20,
  maxTimeoutSeconds: 24 * 3600,
  maxNotifyTargets: 10,
} as const;

const nameMessage = { message: `$property must be ${NAME_RULE}` };

export class ResourceDefinitionDto {
  @ApiProperty({ example: 'flutter-builder', pattern: NAME_PATTERN.source })
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  name!: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(LIMITS.descriptionLength)
  description?: string;

  @ApiPropertyOptional({ example: '0.0.1', description: 'free-form version label' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  version?: string;

  @ApiProperty({ type: 'object', additionalProperties: true, description: 'JSON Schema for the resources\' spec' })
  @IsObject()
  schema!: JsonObject;
}

/** PUT /resource-definitions/:name: the name comes from the path (a body name must match it). */
export class ResourceDefinitionUpdateDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  name?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(LIMITS.descriptionLength)
  description?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(64)
  version?: string;

  @ApiProperty({ type: 'object', additionalProperties: true })
  @IsObject()
  schema!: JsonObject;
}

export class PipelineStepDto {
  @ApiProperty({ example: '1', pattern: STEP_ID_PATTERN.source })
  @IsString()
  @Matches(STEP_ID_PATTERN, { message: '$property must be letters, digits, "_" and "-", at most 63 characters' })
  id!: string;

  @ApiProperty({ example: 'Start Build Environment' })
  @IsString()
  @MaxLength(LIMITS.stepNameLength)
  name!: string;

  @ApiProperty({ example: 'container-start', pattern: NAME_PATTERN.source })
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  driver!: string;

  @ApiPropertyOptional({ description: 'seconds one attempt may take' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(LIMITS.maxTimeoutSeconds)
  timeout?: number;

  @ApiPropertyOptional({ description: 'extra attempts after a failure' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(LIMITS.maxRetries)
  retries?: number;

  @ApiPropertyOptional({ description: 'cleanup step: runs even after a failure or a cancel' })
  @IsOptional()
  @IsBoolean()
  always?: boolean;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: 'free JSON handed to the driver' })
  @IsOptional()
  @IsObject()
  config?: JsonObject;

  @ApiPropertyOptional({ type: [String], description: 'ids of the steps this one waits for; absent: the step before it; [] none' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(LIMITS.maxSteps)
  @Matches(STEP_ID_PATTERN, { each: true, message: 'each of $property must be a step id' })
  needs?: string[];

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: 'run the step once per combination: {axis: [values…], include?: [{…}], exclude?: [{…}]}; expansions are <id>-<n>' })
  @IsOptional()
  @IsObject()
  matrix?: MatrixSpec;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: 'when the step runs: {status?: [success|failure|always], expr?: CEL over resource, spec, ref, version, pipeline, steps}' })
  @IsOptional()
  @IsObject()
  when?: StepWhen;

  @ApiPropertyOptional({ description: 'a person approves (POST /runs/:id/steps/:stepId/approve) or rejects it; waits until then, or its timeout' })
  @IsOptional()
  @IsBoolean()
  approval?: boolean;

  @ApiPropertyOptional({ description: "of a matrix step's expansions, at most this many run at once" })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(LIMITS.maxSteps * 8)
  maxParallel?: number;
}

export class ConcurrencyDto {
  @ApiProperty({ example: '${{ resource.name }}', description: 'template over ${{ pipeline }}, ${{ resource.name }}, ${{ resource.type }}, ${{ resource.spec.<key> }}' })
  @IsString()
  @MaxLength(256)
  group!: string;

  @ApiPropertyOptional({ description: 'a new run cancels the running one (and those queued) instead of queueing' })
  @IsOptional()
  @IsBoolean()
  cancelInProgress?: boolean;
}

export class NotifyTargetDto {
  @ApiProperty({ example: 'https://chat.example.com/hooks/ci', description: 'an http or https URL the JSON run summary is posted to' })
  @IsString()
  @MaxLength(2048)
  url!: string;

  @ApiProperty({ example: ['failed'], description: 'the run outcomes that post it: succeeded, failed, cancelled' })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(3)
  @IsIn(['succeeded', 'failed', 'cancelled'], { each: true, message: 'on: each outcome must be one of succeeded, failed, cancelled' })
  on!: Array<'succeeded' | 'failed' | 'cancelled'>;

  @ApiPropertyOptional({ example: 'chat-hook-secret', description: 'a stored secret: the body is signed with it (X-Conveyor-Signature-256: sha256=<hex HMAC-SHA256>)' })
  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  secret?: string;
}

/** What a pipeline is made of, created or replaced alike (the two differ only in `name`). */
class PipelineBodyDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(LIMITS.descriptionLength)
  description?: string;

  @ApiProperty({ example: 'flutter-builder', description: 'the resource definition this pipeline builds' })
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  resource!: string;

  @ApiProperty({ type: [PipelineStepDto] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(LIMITS.maxSteps)
  @ValidateNested({ each: true })
  @Type(() => PipelineStepDto)
  steps!: PipelineStepDto[];

  @ApiPropertyOptional({ description: 'a step that fails for good stops the other running steps (default true)' })
  @IsOptional()
  @IsBoolean()
  failFast?: boolean;

  @ApiPropertyOptional({ type: () => ConcurrencyDto, description: 'at most one run of a group runs at a time; later ones queue, or cancel the running one' })
  @IsOptional()
  @ValidateNested()
  @Type(() => ConcurrencyDto)
  concurrency?: ConcurrencyDto;

  @ApiPropertyOptional({ type: [NotifyTargetDto], description: 'where to post a JSON summary of each run that ends in one of the given outcomes' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(LIMITS.maxNotifyTargets)
  @ValidateNested({ each: true })
  @Type(() => NotifyTargetDto)
  notify?: NotifyTargetDto[];
}

export class PipelineDto extends PipelineBodyDto {
  @ApiProperty({ example: 'flutter-pipeline' })
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  name!: string;
}

export class PipelineUpdateDto extends PipelineBodyDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  name?: string;
}

export class ResourceDto {
  @ApiProperty({ example: 'build-app' })
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  name!: string;

  @ApiProperty({ example: 'flutter-builder', description: 'the resource definition (type) of this resource' })
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  resource!: string;

  @ApiPropertyOptional({ example: 'flutter-pipeline', description: 'when given, a run of this pipeline starts' })
  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  pipeline?: string;

  @ApiProperty({ type: 'object', additionalProperties: true })
  @IsObject()
  spec!: JsonObject;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  @IsOptional()
  @IsObject()
  metadata?: JsonObject;
}

/** PUT /resources/:type/:name: a new version. Name and type come from the path. */
export class ResourceUpdateDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  name?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  resource?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  pipeline?: string;

  @ApiProperty({ type: 'object', additionalProperties: true })
  @IsObject()
  spec!: JsonObject;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true })
  @IsOptional()
  @IsObject()
  metadata?: JsonObject;
}


/** POST /schedules. */
export class ScheduleDto {
  @ApiProperty({ example: 'nightly', pattern: NAME_PATTERN.source })
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  name!: string;

  @ApiProperty({ example: '0 3 * * *', description: '5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first' })
  @IsString()
  @MaxLength(200)
  cron!: string;

  @ApiPropertyOptional({ example: 'Europe/Berlin', description: 'IANA time zone the cron is read in (default UTC)' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  timezone?: string;

  @ApiProperty({ example: 'flutter-builder', description: 'the resource definition (type) of the resource each tick makes a version of' })
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  resource!: string;

  @ApiProperty({ example: 'flutter-pipeline' })
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  pipeline!: string;

  @ApiPropertyOptional({ example: 'nightly-app', description: "the resource's name (default: the schedule's name)" })
  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  resourceName?: string;

  @ApiProperty({ type: 'object', additionalProperties: true })
  @IsObject()
  spec!: JsonObject;
}

/** PUT /schedules/:name: the whole schedule again; the name comes from the path. */
export class ScheduleUpdateDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  name?: string;

  @ApiProperty({ example: '0 3 * * *' })
  @IsString()
  @MaxLength(200)
  cron!: string;

  @ApiPropertyOptional({ example: 'Europe/Berlin' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  timezone?: string;

  @ApiProperty()
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  resource!: string;

  @ApiProperty()
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  pipeline!: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  resourceName?: string;

  @ApiProperty({ type: 'object', additionalProperties: true })
  @IsObject()
  spec!: JsonObject;
}

export const TRIGGER_SOURCES: readonly TriggerSource[] = ['github', 'gitea', 'gitlab', 'generic'];
export const TRIGGER_EVENTS: readonly TriggerEvent[] = ['push', 'tag', 'pull_request'];
export const FORGES: readonly Forge[] = ['github', 'gitea', 'gitlab'];
/** Secret names as libs/secrets takes them (SECRET_NAME_PATTERN there; contracts import no lib). */
const SECRET_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
const secretMessage = { message: '$property must be a secret name: a letter followed by letters, digits, "_" or "-", at most 63 characters' };

export class CommitStatusTargetDto {
  @ApiProperty({ example: 'https://api.github.com', description: "the forge API's base URL (GitHub https://api.github.com, Gitea https://host/api/v1, GitLab https://host/api/v4)" })
  @IsString()
  @MaxLength(500)
  api!: string;

  @ApiProperty({ example: 'github-status-token', description: 'a stored secret: the API token' })
  @IsString()
  @Matches(SECRET_NAME, secretMessage)
  token!: string;

  @ApiPropertyOptional({ enum: FORGES, description: "which API (default: the trigger's source; required for a generic trigger)" })
  @IsOptional()
  @IsIn(FORGES as Forge[])
  forge?: Forge;

  @ApiPropertyOptional({ example: 'octo-org/hello-world', description: "owner/name (GitHub, Gitea) or the project id or path (GitLab); read from the event by default" })
  @IsOptional()
  @IsString()
  @MaxLength(300)
  project?: string;

  @ApiPropertyOptional({ example: 'conveyor/build', description: 'the status context on the commit (default conveyor/<pipeline>)' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  context?: string;
}

/** What a trigger is made of, created or replaced alike (the two differ only in `name`). */
class TriggerBodyDto {
  @ApiProperty({ enum: TRIGGER_SOURCES })
  @IsIn(TRIGGER_SOURCES as TriggerSource[])
  source!: TriggerSource;

  @ApiProperty({ example: 'github-webhook', description: 'a stored secret: the webhook secret the forge signs with' })
  @IsString()
  @Matches(SECRET_NAME, secretMessage)
  secret!: string;

  @ApiPropertyOptional({ example: 'octo-org/hello-world', description: 'only events of this repository (clone URL or owner/name)' })
  @IsOptional()
  @IsString()
  @MaxLength(500)
  repository?: string;

  @ApiPropertyOptional({ enum: TRIGGER_EVENTS, isArray: true, description: 'default ["push"]' })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(3)
  @IsIn(TRIGGER_EVENTS as TriggerEvent[], { each: true })
  events?: TriggerEvent[];

  @ApiPropertyOptional({ example: ['main', 'release/*', '!release/old'], description: 'globs over the branch (the tag for tag events, the target branch for pull requests); "!" excludes' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(50)
  @IsString({ each: true })
  @MaxLength(200, { each: true })
  branches?: string[];

  @ApiProperty({ example: 'flutter-builder', description: 'the resource definition (type) of the resource each event makes a version of' })
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  resource!: string;

  @ApiProperty({ example: 'flutter-pipeline' })
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  pipeline!: string;

  @ApiPropertyOptional({ example: 'app-${{ branch }}', description: "template for the resource's name: ${{ trigger }}, ${{ branch }}, ${{ event }}, ${{ repository.name }} (default: the trigger's name)" })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  resourceName?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: "merged over what the event gives (repository, ref, commit, sender, message); strings may use ${{ event.commit }} and the like" })
  @IsOptional()
  @IsObject()
  spec?: JsonObject;

  @ApiPropertyOptional({ type: () => CommitStatusTargetDto, description: "post the run's commit status to this forge API" })
  @IsOptional()
  @ValidateNested()
  @Type(() => CommitStatusTargetDto)
  status?: CommitStatusTargetDto;
}

/** POST /triggers. */
export class TriggerDto extends TriggerBodyDto {
  @ApiProperty({ example: 'hello-world', pattern: NAME_PATTERN.source })
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  name!: string;
}

/** PUT /triggers/:name: the whole trigger again; the name comes from the path. */
export class TriggerUpdateDto extends TriggerBodyDto {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Matches(NAME_PATTERN, nameMessage)
  name?: string;
}
