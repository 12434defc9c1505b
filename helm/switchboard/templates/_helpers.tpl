{{/*
Chart name, truncated to the 63 characters a label value may have.
*/}}
{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name used for resources: <release>-<chart>, or <release> when it already contains the
chart name. Truncated to 63 characters (DNS label).
*/}}
{{- define "switchboard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
chart label value: <name>-<version>.
*/}}
{{- define "switchboard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels on every resource (app.kubernetes.io/* recommended labels).
*/}}
{{- define "switchboard.labels" -}}
{{ include "switchboard.baseLabels" . }}
app.kubernetes.io/component: gateway
{{- end }}

{{/*
Labels without the component (for pods that must never match the gateway selector, e.g. the test pod).
*/}}
{{- define "switchboard.baseLabels" -}}
helm.sh/chart: {{ include "switchboard.chart" . }}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "switchboard.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/part-of: {{ .Values.partOf | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of the gateway pods (immutable in a Deployment: never add to them).
*/}}
{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end }}

{{/*
Labels and selector of the bundled dev Redis.
*/}}
{{- define "switchboard.redis.selectorLabels" -}}
app.kubernetes.io/name: redis
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: redis-dev
{{- end }}

{{- define "switchboard.redis.labels" -}}
helm.sh/chart: {{ include "switchboard.chart" . }}
{{ include "switchboard.redis.selectorLabels" . }}
app.kubernetes.io/part-of: {{ .Values.partOf | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
switchboard.dev/not-for-production: "true"
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "switchboard.redis.fullname" -}}
{{- printf "%s-redis" (include "switchboard.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of the ServiceAccount the pods use.
*/}}
{{- define "switchboard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "switchboard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image tag (appVersion when unset) and full image reference (digest wins).
*/}}
{{- define "switchboard.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "switchboard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "switchboard.imageTag" .) }}
{{- end }}
{{- end }}

{{/*
Secrets. The chart's own Secret (<fullname>) holds whatever was given as plain values (the
JWT key, the API key and the Redis URL) and the generated HMAC secret when no JWT key was
given. Each of them can come from an existing Secret instead (auth.existingSecret,
redis.existingSecret).
*/}}
{{- define "switchboard.secretName" -}}
{{- include "switchboard.fullname" . }}
{{- end }}

{{/* true when config.jwtAlg is an HMAC algorithm (HS256/384/512) */}}
{{- define "switchboard.jwtIsHmac" -}}
{{- if hasPrefix "HS" (upper .Values.config.jwtAlg) }}true{{- end }}
{{- end }}

{{/* Secret holding the JWT key and the API key ("" when there is none). */}}
{{- define "switchboard.authSecretName" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecret }}
{{- else if or .Values.auth.jwtSecret .Values.auth.jwtPublicKey .Values.auth.apiKey (include "switchboard.generatesJwtSecret" .) }}
{{- include "switchboard.secretName" . }}
{{- end }}
{{- end }}

{{/* true when the user configured a JWT key (auth.jwtSecret, auth.jwtPublicKey or auth.existingSecret). */}}
{{- define "switchboard.userJwtKey" -}}
{{- if or .Values.auth.existingSecret .Values.auth.jwtSecret .Values.auth.jwtPublicKey }}true{{- end }}
{{- end }}

{{/*
true when the chart generates the HMAC secret: no JWT key configured and an HS* algorithm.
The gateway refuses to start without a key on a non-loopback listen address (which the chart
always sets) unless in dev mode, and even dev mode is better off with one secret shared by
every pod than with a random one per pod. So the chart's own Secret gets a random secret,
kept across `helm upgrade` (see switchboard.generatedJwtSecret).
*/}}
{{- define "switchboard.generatesJwtSecret" -}}
{{- if and (not (include "switchboard.userJwtKey" .)) (include "switchboard.jwtIsHmac" .) }}true{{- end }}
{{- end }}

{{/* true when the pods get a JWT key: configured, or generated by the chart. */}}
{{- define "switchboard.hasJwtKey" -}}
{{- if or (include "switchboard.userJwtKey" .) (include "switchboard.generatesJwtSecret" .) }}true{{- end }}
{{- end }}

{{/*
The chart's Secret as it exists in the cluster, as YAML ("{}" when it does not exist, and
always "{}" offline: helm template, helm lint, client-side --dry-run). Kept on its own so the
check script can stand in for the cluster (scripts/deploy_checks/kubernetes.py).
*/}}
{{- define "switchboard.liveSecret" -}}
{{- lookup "v1" "Secret" .Release.Namespace (include "switchboard.secretName" .) | toYaml }}
{{- end }}

{{/*
The generated HMAC secret, base64-encoded for the Secret's data: the value the chart's Secret
already holds in the cluster (so `helm upgrade` keeps it and the tokens signed with it stay
valid), else 48 new random characters (first install, or any offline render).
*/}}
{{- define "switchboard.generatedJwtSecret" -}}
{{- $live := include "switchboard.liveSecret" . | fromYaml | default dict }}
{{- $previous := dig "data" .Values.auth.existingSecretKeys.jwtSecret "" $live }}
{{- if $previous }}
{{- $previous }}
{{- else }}
{{- randAlphaNum 48 | b64enc }}
{{- end }}
{{- end }}

{{/*
The data of the chart's own Secret. Called with (dict "root" $ "forChecksum" bool): with
forChecksum the generated JWT secret is written as a fixed marker, so the pods' checksum/secret
annotation follows only what the user gave (plain values, key names, generate or not) and never
a regenerated value: an upgrade never rolls the pods because of it. A generated value is kept
across upgrades anyway; after deleting the Secret, `kubectl rollout restart` the Deployment.
*/}}
{{- define "switchboard.secretData" -}}
{{- $ := .root }}
{{- $keys := $.Values.auth.existingSecretKeys }}
{{- if not $.Values.auth.existingSecret }}
{{- with $.Values.auth.jwtSecret }}
{{ $keys.jwtSecret }}: {{ . | b64enc | quote }}
{{- end }}
{{- if include "switchboard.generatesJwtSecret" $ }}
{{ $keys.jwtSecret }}: {{ if .forChecksum }}"generated-by-the-chart"{{ else }}{{ include "switchboard.generatedJwtSecret" $ | quote }}{{ end }}
{{- end }}
{{- with $.Values.auth.jwtPublicKey }}
{{ $keys.jwtPublicKey }}: {{ . | b64enc | quote }}
{{- end }}
{{- with $.Values.auth.apiKey }}
{{ $keys.apiKey }}: {{ . | b64enc | quote }}
{{- end }}
{{- end }}
{{- if and (not $.Values.redis.enabled) (not $.Values.redis.existingSecret) $.Values.redis.url }}
{{ $.Values.redis.existingSecretKey }}: {{ $.Values.redis.url | b64enc | quote }}
{{- end }}
{{- end }}

{{/* true when the JWT key is a public key file (asymmetric algorithm). */}}
{{- define "switchboard.usesPublicKey" -}}
{{- if and (include "switchboard.hasJwtKey" .) (not (include "switchboard.jwtIsHmac" .)) }}true{{- end }}
{{- end }}

{{/* Secret holding the Redis URL ("" with the bundled Redis or no Redis). */}}
{{- define "switchboard.redisSecretName" -}}
{{- if .Values.redis.enabled }}
{{- else if .Values.redis.existingSecret }}
{{- .Values.redis.existingSecret }}
{{- else if .Values.redis.url }}
{{- include "switchboard.secretName" . }}
{{- end }}
{{- end }}

{{/* true when pods share a Redis (bundled, URL or existing Secret). */}}
{{- define "switchboard.hasRedis" -}}
{{- if or .Values.redis.enabled .Values.redis.url .Values.redis.existingSecret }}true{{- end }}
{{- end }}

{{/* true when the chart must create its own Secret. */}}
{{- define "switchboard.createSecret" -}}
{{- if and (not .Values.auth.existingSecret) (or .Values.auth.jwtSecret .Values.auth.jwtPublicKey .Values.auth.apiKey (include "switchboard.generatesJwtSecret" .)) }}true
{{- else if and (not .Values.redis.enabled) (not .Values.redis.existingSecret) .Values.redis.url }}true
{{- end }}
{{- end }}

{{/* Where the public key file is mounted. */}}
{{- define "switchboard.jwtPublicKeyDir" -}}/etc/switchboard/jwt{{- end }}

{{/* terminationGracePeriodSeconds: preStop sleep + drain delay + drain timeout + margin. */}}
{{- define "switchboard.terminationGracePeriodSeconds" -}}
{{- add (int .Values.lifecycle.preStopSleepSeconds) (int .Values.drain.delaySeconds) (int .Values.drain.timeoutSeconds) (int .Values.drain.marginSeconds) }}
{{- end }}

{{/*
Checks that cannot be expressed in values.schema.json; each fails the render with the fix.
*/}}
{{- define "switchboard.validate" -}}
{{- if and (not (include "switchboard.hasRedis" .)) (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) }}
{{- fail "switchboard: more than one replica needs a shared Redis (the in-memory backend is per pod): set redis.url, redis.existingSecret or redis.enabled (dev only)" }}
{{- end }}
{{- if and .Values.redis.enabled (or .Values.redis.url .Values.redis.existingSecret) }}
{{- fail "switchboard: redis.enabled deploys a bundled dev Redis; unset redis.url/redis.existingSecret, or turn redis.enabled off to use them" }}
{{- end }}
{{- if and (not .Values.auth.existingSecret) .Values.auth.jwtSecret .Values.auth.jwtPublicKey }}
{{- fail "switchboard: set only one of auth.jwtSecret (HS*) and auth.jwtPublicKey (RS*/PS*/ES*/EdDSA)" }}
{{- end }}
{{- if and (not .Values.auth.existingSecret) .Values.auth.jwtSecret (not (include "switchboard.jwtIsHmac" .)) }}
{{- fail (printf "switchboard: auth.jwtSecret is an HMAC secret but config.jwtAlg is %s; use auth.jwtPublicKey or an HS* algorithm" .Values.config.jwtAlg) }}
{{- end }}
{{- if and (not .Values.auth.existingSecret) .Values.auth.jwtPublicKey (include "switchboard.jwtIsHmac" .) }}
{{- fail (printf "switchboard: auth.jwtPublicKey needs an asymmetric config.jwtAlg (RS*/PS*/ES*/EdDSA), not %s" .Values.config.jwtAlg) }}
{{- end }}
{{- if and .Values.config.dev (not (include "switchboard.jwtIsHmac" .)) }}
{{- fail (printf "switchboard: config.dev mints HS* tokens at /dev/token, so it needs an HS* config.jwtAlg, not %s (the gateway would refuse to start)" .Values.config.jwtAlg) }}
{{- end }}
{{- if not (include "switchboard.hasJwtKey" .) }}
{{- fail (printf "switchboard: config.jwtAlg %s needs a public key: set auth.jwtPublicKey or auth.existingSecret (key %s); the chart can only generate HMAC (HS*) secrets, and the gateway refuses to start without a key" .Values.config.jwtAlg .Values.auth.existingSecretKeys.jwtPublicKey) }}
{{- end }}
{{- if and (gt (int .Values.lifecycle.preStopSleepSeconds) 0) (semverCompare "<1.30.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "switchboard: lifecycle.preStopSleepSeconds uses the native preStop sleep action, which needs Kubernetes 1.30+ (cluster: %s); set it to 0 (the gateway's drain delay already covers endpoint propagation)" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- $pdbMax := toString .Values.podDisruptionBudget.maxUnavailable }}
{{- $pdbMin := toString .Values.podDisruptionBudget.minAvailable }}
{{- if and (ne $pdbMax "") (ne $pdbMax "<nil>") (ne $pdbMin "") (ne $pdbMin "<nil>") }}
{{- fail "switchboard: podDisruptionBudget takes minAvailable OR maxUnavailable, not both (leave the other empty)" }}
{{- end }}
{{- end }}

{{/*
Environment variables of the gateway container that do not come from the ConfigMap:
secrets (by secretKeyRef, never in the ConfigMap), the public key file path, the Redis URL,
then extraEnv. Rendered as a YAML list; empty when there is nothing to set.
*/}}
{{- define "switchboard.env" -}}
{{- $authSecret := include "switchboard.authSecretName" . -}}
{{- $redisSecret := include "switchboard.redisSecretName" . -}}
{{- $keys := .Values.auth.existingSecretKeys -}}
{{- if $authSecret }}
{{- if include "switchboard.usesPublicKey" . }}
- name: SWITCHBOARD_JWT_PUBLIC_KEY_FILE
  value: {{ printf "%s/%s" (include "switchboard.jwtPublicKeyDir" .) $keys.jwtPublicKey | quote }}
{{- else if include "switchboard.hasJwtKey" . }}
- name: SWITCHBOARD_JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $authSecret }}
      key: {{ $keys.jwtSecret }}
{{- end }}
{{- if or .Values.auth.existingSecret .Values.auth.apiKey }}
- name: SWITCHBOARD_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $authSecret }}
      key: {{ $keys.apiKey }}
      {{- if .Values.auth.existingSecret }}
      # An existing Secret may leave the API key out: the API then answers 503.
      optional: true
      {{- end }}
{{- end }}
{{- if .Values.auth.existingSecret }}
# Named HMAC secrets for key rotation (kid1:secret1,...), when the Secret has them.
- name: SWITCHBOARD_JWT_SECRETS
  valueFrom:
    secretKeyRef:
      name: {{ $authSecret }}
      key: {{ $keys.jwtSecrets }}
      optional: true
{{- end }}
{{- end }}
{{- if .Values.redis.enabled }}
# Bundled dev Redis (no password, not for production).
- name: SWITCHBOARD_REDIS_URL
  value: {{ printf "redis://%s:6379" (include "switchboard.redis.fullname" .) | quote }}
{{- else if $redisSecret }}
- name: SWITCHBOARD_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $redisSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* An integer or a percentage string ("25%"), rendered as a PDB/strategy value. */}}
{{- define "switchboard.intOrString" -}}
{{- if kindIs "string" . }}{{ . | quote }}{{ else }}{{ int64 . }}{{ end }}
{{- end }}
