{{/*
Naming, labels and the pod-spec building blocks shared by every workload of the chart.
*/}}

{{/* Release-scoped base name, at most 40 characters so "<base>-<component>" fits in 63. */}}
{{- define "ferrostack.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Name of one component's objects: (dict "ctx" $ "component" "backend-api") */}}
{{- define "ferrostack.componentName" -}}
{{- printf "%s-%s" (include "ferrostack.fullname" .ctx) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ferrostack.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. Argument: (dict "ctx" $ "component" "backend-api") */}}
{{- define "ferrostack.labels" -}}
helm.sh/chart: {{ include "ferrostack.chart" .ctx }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: ferrostack
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
{{ include "ferrostack.selectorLabels" . }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Stable selector labels: never version or chart (selectors are immutable). */}}
{{- define "ferrostack.selectorLabels" -}}
app.kubernetes.io/name: ferrostack
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
The one label a NetworkPolicy selects a workload by (exactly one label pair, so Polaris'
missingNetworkPolicy oneOf rule matches). The healthcheck CronJob and status page share one.
*/}}
{{- define "ferrostack.netpolLabel" -}}
ferrostack.io/netpol: {{ include "ferrostack.componentName" . }}
{{- end -}}

{{- define "ferrostack.image" -}}
{{- $img := .Values.image -}}
{{- $tag := $img.tag | default .Chart.AppVersion -}}
{{- if $img.digest -}}
{{- printf "%s:%s@%s" $img.repository $tag $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $img.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "ferrostack.priorityClassName" -}}
{{- $pc := index .ctx.Values.priorityClasses .priority -}}
{{- $pc.name -}}
{{- end -}}

{{/*
checkov skips that depend on values, each with its reason. Argument: (dict "ctx" $ "extra" list)
where extra holds further "CKV_ID=reason" strings for this object.
*/}}
{{- define "ferrostack.checkovSkips" -}}
{{- $skips := list -}}
{{- if not .ctx.Values.image.digest -}}
{{- $skips = append $skips "CKV_K8S_43=image.digest is unset: the tag is an immutable release tag; production installs pin the digest printed by the image workflow (set image.digest to sha256:...)" -}}
{{- end -}}
{{- if ne .ctx.Values.image.pullPolicy "Always" -}}
{{- $skips = append $skips "CKV_K8S_15=image.pullPolicy is not Always: the image is side-loaded into the node (kind load), there is no registry to pull from" -}}
{{- end -}}
{{- range (.extra | default list) -}}
{{- $skips = append $skips . -}}
{{- end -}}
{{- range $i, $s := $skips }}
{{ printf "checkov.io/skip%d" (add1 $i) }}: {{ $s | quote }}
{{- end -}}
{{- end -}}

{{/*
metadata.annotations of a workload: the values-dependent checkov skips plus the given map;
renders nothing when both are empty. Argument: (dict "ctx" $ "extra" list "annotations" dict)
*/}}
{{- define "ferrostack.workloadAnnotations" -}}
{{- $skips := include "ferrostack.checkovSkips" . | trim -}}
{{- if or $skips .annotations -}}
annotations:
  {{- with $skips }}
  {{- . | nindent 2 }}
  {{- end }}
  {{- with .annotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Pod-level securityContext: Pod Security Standards "restricted". */}}
{{- define "ferrostack.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level securityContext: restricted, read-only root, every capability dropped. */}}
{{- define "ferrostack.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Seconds the kubelet waits after SIGTERM: the preStop sleep (endpoints removed), the drain
delay (readiness already 503), the shutdown timeout (in-flight requests) and 5 s of slack.
*/}}
{{- define "ferrostack.terminationGracePeriodSeconds" -}}
{{- $s := .Values.shutdown -}}
{{- add $s.preStopSleepSeconds $s.drainDelaySeconds $s.shutdownTimeoutSeconds 5 -}}
{{- end -}}

{{/* The FERROSTACK_* settings every HTTP role shares (runtime ServerArgs). */}}
{{- define "ferrostack.serverEnv" -}}
- name: FERROSTACK_HOST
  value: "0.0.0.0"
- name: FERROSTACK_DRAIN_DELAY
  value: "{{ .Values.shutdown.drainDelaySeconds }}s"
- name: FERROSTACK_SHUTDOWN_TIMEOUT
  value: "{{ .Values.shutdown.shutdownTimeoutSeconds }}s"
- name: FERROSTACK_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end -}}

{{/*
Soft spreading (case study 3.2.a): preferred anti-affinity on the node and topology spread
with ScheduleAnyway, so more replicas than nodes still schedule. Argument: (dict "ctx" $
"component" "backend-api" "nodeAffinity" {...})
*/}}
{{- define "ferrostack.scheduling" -}}
affinity:
  {{- with .nodeAffinity }}
  {{- if .enabled }}
  nodeAffinity:
    {{- if .required }}
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions:
            - key: {{ .key }}
              operator: In
              values: {{ toYaml .values | nindent 16 }}
    {{- else }}
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: {{ .weight }}
        preference:
          matchExpressions:
            - key: {{ .key }}
              operator: In
              values: {{ toYaml .values | nindent 16 }}
    {{- end }}
  {{- end }}
  {{- end }}
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "ferrostack.selectorLabels" . | nindent 14 }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "ferrostack.selectorLabels" . | nindent 8 }}
    matchLabelKeys: ["pod-template-hash"]
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "ferrostack.selectorLabels" . | nindent 8 }}
    matchLabelKeys: ["pod-template-hash"]
{{- end -}}

{{/* Probes of an HTTP role on a named port: startup, liveness (/healthz), readiness (/readyz). */}}
{{- define "ferrostack.probes" -}}
{{- $p := .ctx.Values.probes -}}
startupProbe:
  httpGet: {path: /healthz, port: {{ .port }}}
  periodSeconds: {{ $p.startup.periodSeconds }}
  timeoutSeconds: {{ $p.startup.timeoutSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
livenessProbe:
  httpGet: {path: /healthz, port: {{ .port }}}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
readinessProbe:
  httpGet: {path: /readyz, port: {{ .port }}}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
  successThreshold: 1
{{- end -}}

{{/* preStop: the kubelet's own sleep action (no shell in a distroless image). */}}
{{- define "ferrostack.lifecycle" -}}
lifecycle:
  preStop:
    sleep:
      seconds: {{ .Values.shutdown.preStopSleepSeconds }}
{{- end -}}

{{/* DNS egress rule (UDP and TCP 53 to kube-dns) used by every NetworkPolicy. */}}
{{- define "ferrostack.dnsEgress" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ .Values.networkPolicy.dns.namespace }}
      podSelector:
        matchLabels:
          {{- toYaml .Values.networkPolicy.dns.podLabels | nindent 10 }}
  ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
{{- end -}}

{{/* Ingress peer: the Prometheus pods. */}}
{{- define "ferrostack.prometheusPeer" -}}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .Values.networkPolicy.prometheus.namespace }}
  podSelector:
    matchLabels:
      {{- toYaml .Values.networkPolicy.prometheus.podLabels | nindent 6 }}
{{- end -}}

{{/* Ingress peer: the ingress controller / gateway pods. */}}
{{- define "ferrostack.ingressControllerPeer" -}}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .Values.networkPolicy.ingressController.namespace }}
  podSelector:
    matchLabels:
      {{- toYaml .Values.networkPolicy.ingressController.podLabels | nindent 6 }}
{{- end -}}

{{/* Egress rule to HTTPS endpoints outside the cluster (external logs API, object storage). */}}
{{/* The TCP port a URL's connections go to: its explicit port, else its scheme's (http 80,
anything else 443). "https://minio.storage.svc:9000" -> 9000. */}}
{{- define "ferrostack.urlPort" -}}
{{- $u := urlParse . -}}
{{- $host := $u.host -}}
{{- $port := "" -}}
{{- if and (contains ":" $host) (not (hasSuffix "]" $host)) -}}
{{- $port = last (splitList ":" $host) -}}
{{- end -}}
{{- if $port -}}{{ $port }}{{- else if eq $u.scheme "http" -}}80{{- else -}}443{{- end -}}
{{- end -}}

{{/* Egress to the endpoints outside the release, derived from the URLs configured: the
networkPolicy.externalEgress ports, plus the port of backendApi.externalLogs.url and, for the
pods that carry the logship sidecar (dict "ctx" $ "logship" true), of logship.s3Endpoint. An
in-cluster endpoint (<service>.<namespace>.svc...) also gets a rule to its namespace on that
port: ipBlock peers may not match pod addresses (the NetworkPolicy API leaves that to the
plugin). */}}
{{- define "ferrostack.externalEgress" -}}
{{- $ctx := .ctx -}}
{{- $e := $ctx.Values.networkPolicy.externalEgress -}}
{{- $urls := list -}}
{{- with $ctx.Values.backendApi.externalLogs.url }}{{ $urls = append $urls . }}{{ end -}}
{{- if and .logship $ctx.Values.logship.enabled $ctx.Values.logship.s3Endpoint -}}
{{- $urls = append $urls $ctx.Values.logship.s3Endpoint -}}
{{- end -}}
{{- $ports := list -}}
{{- range $e.ports }}{{ $ports = append $ports (int .) }}{{ end -}}
{{- range $urls }}{{ $ports = append $ports (int (include "ferrostack.urlPort" .)) }}{{ end -}}
- to:
    - ipBlock:
        cidr: {{ $e.cidr }}
        {{- with $e.except }}
        except: {{ toYaml . | nindent 10 }}
        {{- end }}
  ports:
    {{- range uniq $ports }}
    - {protocol: TCP, port: {{ . }}}
    {{- end }}
{{- range $urls }}
{{- $labels := splitList "." (urlParse .).host }}
{{- if and (gt (len $labels) 2) (eq (index $labels 2 | splitList ":" | first) "svc") }}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ index $labels 1 }}
  ports:
    - {protocol: TCP, port: {{ include "ferrostack.urlPort" . }}}
{{- end }}
{{- end }}
{{- end -}}

{{/* The healthcheck targets file and alert settings, for run and serve. */}}
{{- define "ferrostack.healthcheckTargetsEnv" -}}
- name: FERROSTACK_CONFIG
  value: /etc/ferrostack/healthcheck/targets.yaml
{{- with .Values.healthcheck.alertmanagerUrl }}
- name: FERROSTACK_ALERTMANAGER_URL
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* The targets file (healthcheck --config): the two services and the optional extras. */}}
{{- define "ferrostack.healthcheckTargets" -}}
{{- $backend := printf "http://%s:%v" (include "ferrostack.componentName" (dict "ctx" . "component" "backend-api")) .Values.backendApi.port -}}
{{- $data := printf "http://%s:%v" (include "ferrostack.componentName" (dict "ctx" . "component" "data-api")) .Values.dataApi.port -}}
{{- $targets := list -}}
{{- if .Values.backendApi.enabled -}}
{{- $targets = append $targets (dict "name" "backend-api" "url" (printf "%s/" $backend)) -}}
{{- range .Values.healthcheck.externalLogsEnvs -}}
{{- $targets = append $targets (dict "name" (printf "download-external-logs-%s" .) "url" (printf "%s/download_external_logs?env=%s" $backend .)) -}}
{{- end -}}
{{- end -}}
{{- if .Values.dataApi.enabled -}}
{{- $targets = append $targets (dict "name" "data-api" "url" (printf "%s/" $data)) -}}
{{- end -}}
{{- $targets = concat $targets .Values.healthcheck.extraTargets -}}
{{- if not $targets -}}
{{- fail "healthcheck has no targets: enable backendApi or dataApi, or set healthcheck.extraTargets" -}}
{{- end -}}
{{- $file := dict "defaults" .Values.healthcheck.targetDefaults "targets" $targets -}}
{{- with .Values.healthcheck.maintenance }}{{ $_ := set $file "maintenance" . }}{{ end -}}
{{- with .Values.healthcheck.externalEndpoints }}{{ $_ := set $file "external-endpoints" . }}{{ end -}}
{{- toYaml $file -}}
{{- end -}}

{{/* Volume and mount of the targets ConfigMap. */}}
{{- define "ferrostack.healthcheckConfigVolume" -}}
- name: targets
  configMap:
    name: {{ include "ferrostack.componentName" (dict "ctx" . "component" "healthcheck") }}-targets
{{- end -}}

{{/* Consecutive results before a target changes state. */}}
{{- define "ferrostack.healthcheckThresholdsEnv" -}}
- name: FERROSTACK_FAILURE_THRESHOLD
  value: {{ .Values.healthcheck.failureThreshold | quote }}
- name: FERROSTACK_SUCCESS_THRESHOLD
  value: {{ .Values.healthcheck.successThreshold | quote }}
{{- end -}}

{{/* Egress to the Kubernetes API (service port 443, endpoint port 6443 after DNAT). */}}
{{- define "ferrostack.apiServerEgress" -}}
- to:
    - ipBlock:
        cidr: {{ .Values.webhook.apiServerCIDR }}
  ports:
    - {protocol: TCP, port: 443}
    - {protocol: TCP, port: 6443}
{{- end }}

{{/* The healthcheck pods' sysctls: `net.ipv4.ping_group_range` for icmp:// targets (a safe,
namespaced sysctl: an unprivileged ping socket for the pod's group), when set. */}}
{{- define "ferrostack.healthcheckSysctls" -}}
{{- with .Values.healthcheck.pingGroupRange }}
sysctls:
  - {name: net.ipv4.ping_group_range, value: {{ . | quote }}}
{{- end }}
{{- end -}}
