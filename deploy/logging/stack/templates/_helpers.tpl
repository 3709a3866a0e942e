{{/* Labels on every object of the logging stack. */}}
{{- define "logging.labels" -}}
app.kubernetes.io/part-of: ferrostack-logging
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/* The Elasticsearch HTTPS Service ECK creates. */}}
{{- define "logging.esService" -}}
{{ .Values.elasticsearch.name }}-es-http
{{- end -}}

{{/* The Secret with the CA of the Elasticsearch HTTPS certificate (ECK publishes it). */}}
{{- define "logging.esCASecret" -}}
{{ .Values.elasticsearch.name }}-es-http-certs-public
{{- end -}}
