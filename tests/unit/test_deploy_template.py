"""What infra/app-merge.yaml and infra/package.py make of the template `make package` builds
for a release: an HTTP API in place of the REST API (throttling, access logs, CORS) behind
CloudFront and the WAF, the uploads bucket's direct invocation, alarms to one topic, the
dashboard, canary releases on a `live` alias; and infra/rollback.sh, run against a stand-in
`aws` command."""
from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.provision import load_template

ROOT = Path(__file__).resolve().parents[2]
STAGE = "dev"
CONFIG = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
ENV = CONFIG["stages"][STAGE]["environment_variables"]


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("package") / STAGE
    # As `make package` runs from a shell: without the `local` stage's environment that
    # tests/conftest.py applies to this process (LOCAL_MODE would add the /_local routes).
    local = set(CONFIG["stages"]["local"]["environment_variables"]) | {"AWS_ENDPOINT_URL"}
    env = {k: v for k, v in os.environ.items() if k not in local}
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    subprocess.run([sys.executable, "infra/package.py", STAGE, str(out)], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=600)
    return {"path": out / "sam.yaml", "template": load_template(out / "sam.yaml")}


@pytest.fixture(scope="module")
def resources(packaged) -> dict:
    return packaged["template"]["Resources"]


@pytest.fixture(scope="module")
def params(packaged) -> dict:
    """Parameter defaults, with Stage (which has none on purpose) set to the packaged stage."""
    values = {name: str(spec.get("Default", ""))
              for name, spec in packaged["template"]["Parameters"].items()}
    values["Stage"] = STAGE
    return values


def sub(value, params: dict, refs: dict | None = None) -> str:
    """A Fn::Sub string (or plain string) with parameters and `refs` filled in."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        value = value["Fn::Sub"]
    if isinstance(value, dict) and "Ref" in value:
        return params.get(value["Ref"], (refs or {}).get(value["Ref"], value["Ref"]))
    assert isinstance(value, str), value
    names = {**params, "AWS::Region": "us-east-1", "AWS::Partition": "aws",
             "AWS::AccountId": "123456789012", **(refs or {})}
    return re.sub(r"\$\{([^}!]+)\}", lambda m: str(names.get(m.group(1), f"<{m.group(1)}>")),
                  value)


def functions(resources: dict) -> list[str]:
    return sorted(name for name, res in resources.items()
                  if res["Type"] == "AWS::Serverless::Function")


def alarms(resources: dict) -> dict[str, dict]:
    return {name: res["Properties"] for name, res in resources.items()
            if res["Type"] == "AWS::CloudWatch::Alarm"}


def find_alarm(resources: dict, params: dict, namespace: str, metric: str,
               dimensions: dict[str, str]) -> tuple[str, dict]:
    found = []
    for name, props in alarms(resources).items():
        dims = {d["Name"]: sub(d["Value"], params, {k: k for k in resources})
                for d in props.get("Dimensions", [])}
        if sub(props["Namespace"], params) == namespace and props["MetricName"] == metric \
                and dims == dimensions:
            found.append((name, props))
    assert len(found) == 1, f"{len(found)} alarms on {namespace} {metric} {dimensions}"
    return found[0]


def threshold(props: dict, params: dict) -> float:
    value = props["Threshold"]
    return float(params[value["Ref"]] if isinstance(value, dict) else value)


# ------------------------------------------------------------------ topic and alarms

def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(resources):
    topic = resources["AlarmTopic"]
    assert topic["Type"] == "AWS::SNS::Topic"
    # Not alias/aws/sns: CloudWatch alarms cannot publish to a topic under that key.
    assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "ObservabilityKey"}
    key = resources["ObservabilityKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    grants = {json.dumps(st["Principal"]): st["Action"] for st in key["KeyPolicy"]["Statement"]}
    assert set(grants[json.dumps({"Service": "cloudwatch.amazonaws.com"})]) >= {
        "kms:Decrypt", "kms:GenerateDataKey*"}


def test_the_email_subscription_exists_only_when_an_address_is_given(packaged, resources):
    template = packaged["template"]
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    assert template["Conditions"]["HasAlarmEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {"TopicArn": {"Ref": "AlarmTopic"}, "Protocol": "email",
                                          "Endpoint": {"Ref": "AlarmEmail"}}


def test_every_alarm_goes_to_the_topic_and_a_quiet_stage_is_healthy(resources):
    found = alarms(resources)
    # API 5xx and latency; errors and throttles of 5 functions; the age of the 2 polled
    # queues; the depth of 3 dead-letter queues; 3 business alarms
    assert len(found) >= 2 + 2 * 5 + 2 + 3 + 3
    for name, props in found.items():
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert props["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert props["TreatMissingData"] == "notBreaching", name
        assert props["ComparisonOperator"] == "GreaterThanThreshold", name


def test_api_alarms_watch_the_5xx_rate_and_the_p99_latency_of_the_http_api(resources, params):
    assert CONFIG["stages"][STAGE]["api_gateway_stage"] == "api"
    # HTTP API metrics are named by the API's id, which is the stage's own API.
    api = {"ApiId": "HttpApi"}

    _, errors = find_alarm(resources, params, "AWS/ApiGateway", "5xx", api)
    assert errors["Statistic"] == "Average" and errors["Period"] == 300
    assert threshold(errors, params) == 0.01

    _, latency = find_alarm(resources, params, "AWS/ApiGateway", "Latency", api)
    assert latency["ExtendedStatistic"] == "p99" and latency["Period"] == 300
    assert "Statistic" not in latency
    assert threshold(latency, params) == 3000


def test_every_function_has_an_errors_and_a_throttles_alarm(resources, params):
    names = functions(resources)
    assert names == ["APIHandler", "AnalyticsRollup", "PaymentEvents", "ReconcilePayments",
                     "UploadEvents"]
    for fn in names:
        for metric in ("Errors", "Throttles"):
            alarm, props = find_alarm(resources, params, "AWS/Lambda", metric,
                                      {"FunctionName": fn})
            assert alarm == f"{fn}{metric}Alarm"
            assert props["Statistic"] == "Sum" and threshold(props, params) == 0


def data_stack() -> tuple[dict, dict]:
    data = load_template(ROOT / "infra" / "resources.yaml")
    data_params = {name: str(spec.get("Default", ""))
                   for name, spec in data["Parameters"].items()}
    data_params["Stage"] = STAGE
    return data, data_params


def test_every_queue_of_the_stage_has_an_age_alarm_and_every_dead_letter_queue_a_depth_alarm(
        resources, params):
    data, data_params = data_stack()
    queues = {logical: res["Properties"] for logical, res in data["Resources"].items()
              if res["Type"] == "AWS::SQS::Queue"}
    consumed = {logical: props for logical, props in queues.items() if "RedrivePolicy" in props}
    # Only the queues Lambda polls: payments, and analytics (which carries the outbox's domain
    # events too); the uploads bucket invokes its function directly.
    names = {sub(props["QueueName"], data_params) for props in consumed.values()}
    assert names == {ENV["PAYMENTS_QUEUE"], ENV["ANALYTICS_QUEUE"]}
    for name in names:
        _, age = find_alarm(resources, params, "AWS/SQS", "ApproximateAgeOfOldestMessage",
                            {"QueueName": name})
        assert age["Statistic"] == "Maximum" and threshold(age, params) == 600
    dead = {sub(props["QueueName"], data_params) for props in queues.values()
            if "RedrivePolicy" not in props}
    assert ENV["UPLOAD_EVENTS_DLQ"] in dead
    for dlq in dead:
        assert dlq.endswith("-dlq")
        _, depth = find_alarm(resources, params, "AWS/SQS", "ApproximateNumberOfMessagesVisible",
                              {"QueueName": dlq})
        assert depth["Statistic"] == "Maximum" and threshold(depth, params) == 0


def emitted_metrics() -> set[str]:
    code = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "chalicelib").rglob("*.py"))
    return set(re.findall(r'(?:add_metric|single_metric)\(name="(\w+)"', code)) | \
        set(re.findall(r'"[a-z]+\.[a-z]+": "([A-Z]\w+)"', code))


DIMENSIONS = ("service", "paidres", "stage", STAGE)


def test_application_alarms_use_the_namespace_service_and_stage_the_functions_publish_with(
        resources, params):
    # One namespace for every stage; each metric names its stage in a dimension
    # (chalicelib/observability.py), so alarms of stages sharing an account never mix.
    assert ENV["POWERTOOLS_METRICS_NAMESPACE"] == "Paidres"
    assert params["MetricsService"] == ENV["POWERTOOLS_SERVICE_NAME"]
    dims = {"service": ENV["POWERTOOLS_SERVICE_NAME"], "stage": STAGE}
    for metric, limit, period in (("PaymentMismatch", 0, 60), ("WebhookRejected", 20, 300),
                                  ("LoginFailures", 100, 300)):
        assert metric in emitted_metrics()
        _, props = find_alarm(resources, params, "Paidres", metric, dims)
        assert props["Statistic"] == "Sum" and props["Period"] == period
        assert threshold(props, params) == limit


def test_every_metric_carries_the_stage_as_a_default_dimension():
    from chalicelib.observability import metrics

    assert metrics.default_dimensions == {"stage": "local"}  # tests run the local stage


# ------------------------------------------------------------------ dashboard

def dashboard(resources: dict, params: dict) -> dict:
    body = resources["Dashboard"]["Properties"]["DashboardBody"]
    refs = {name: f"{name}-function" for name in functions(resources)}
    refs["HttpApi"] = "api123"
    return json.loads(sub(body, params, refs))


def metric_lines(resources: dict, params: dict) -> list[tuple]:
    """(namespace, metric, dimensions, stat, id) of every metric line; expressions apart."""
    lines = []
    for widget in dashboard(resources, params)["widgets"]:
        for metric in widget["properties"]["metrics"]:
            options = metric[-1] if isinstance(metric[-1], dict) else {}
            if "expression" in options:
                continue
            fields = [x for x in metric if isinstance(x, str)]
            lines.append((fields[0], fields[1], tuple(fields[2:]),
                          options.get("stat", widget["properties"].get("stat")),
                          options.get("id")))
    return lines


def test_the_dashboard_body_is_json_and_every_placeholder_resolves(resources, params):
    body = resources["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    known = set(params) | set(resources) | {"AWS::Region"}
    assert set(re.findall(r"\$\{([^}!]+)\}", body)) <= known
    assert dashboard(resources, params)["widgets"]


def test_the_dashboard_business_widgets_read_the_emitted_metrics_of_the_stage(
        resources, params):
    lines = metric_lines(resources, params)
    business = {metric for namespace, metric, _, _, _ in lines if namespace == "Paidres"}
    for metric in ("Revenue", "OrdersPaid", "Refunds", "Signups", "CheckoutsStarted",
                   "ResourceViews"):
        assert metric in business
    assert business <= emitted_metrics(), business - emitted_metrics()
    for namespace, metric, dims, statistic, _ in lines:
        if namespace != "Paidres":
            continue
        assert statistic == "Sum", metric
        if metric == "Revenue":
            assert dims[0] == "currency" and dims[2:] == DIMENSIONS
        else:
            assert dims == DIMENSIONS, metric
    revenue = {dims[1] for _, metric, dims, _, _ in lines if metric == "Revenue"}
    assert revenue == {"cny", "usd"}


def test_the_dashboard_shows_conversion_as_metric_math_over_views(resources, params):
    (widget,) = [w for w in dashboard(resources, params)["widgets"]
                 if any("expression" in str(m) for m in w["properties"]["metrics"])]
    metrics = widget["properties"]["metrics"]
    ids = {m[-1]["id"]: m for m in metrics if isinstance(m[-1], dict) and "id" in m[-1]}
    expressions = {m[0]["expression"] for m in metrics if "expression" in m[0]}
    assert expressions == {"IF(views > 0, paid / views, 0)", "IF(views > 0, started / views, 0)"}
    assert ids["paid"][1] == "OrdersPaid" and ids["started"][1] == "CheckoutsStarted"
    assert ids["views"][1] == "ResourceViews"
    # The inputs are only inputs.
    assert all(ids[i][-1]["visible"] is False for i in ("paid", "started", "views"))


def test_the_dashboard_shows_the_api_functions_and_queues_that_exist(resources, params):
    lines = {(ns, m, d, s) for ns, m, d, s, _ in metric_lines(resources, params)}
    api = ("ApiId", "api123")
    assert {("AWS/ApiGateway", m, api, "Sum") for m in ("4xx", "5xx", "Count")} <= lines
    assert {s for ns, m, d, s in lines if m == "Latency" and d == api} == {"p50", "p99"}
    assert not [line for line in lines if line[0] == "AWS/ApiGateway" and line[2] != api]
    named = {d[1] for ns, m, d, s in lines if ns == "AWS/Lambda"}
    assert named == {f"{fn}-function" for fn in functions(resources)}
    for fn in functions(resources):
        for metric in ("Errors", "Throttles"):
            assert ("AWS/Lambda", metric, ("FunctionName", f"{fn}-function"), "Sum") in lines
    data, data_params = data_stack()
    queues = {sub(res["Properties"]["QueueName"], data_params): res["Properties"]
              for res in data["Resources"].values() if res["Type"] == "AWS::SQS::Queue"}
    polled = {name for name, props in queues.items() if "RedrivePolicy" in props}
    dead = set(queues) - polled
    ages = {d[1] for ns, m, d, s in lines if m == "ApproximateAgeOfOldestMessage"}
    depths = {d[1] for ns, m, d, s in lines if m == "ApproximateNumberOfMessagesVisible"}
    assert ages == polled and {ENV["PAYMENTS_QUEUE"], ENV["ANALYTICS_QUEUE"]} <= ages
    assert depths == dead
    waf = {d for ns, m, d, s in lines if ns == "AWS/WAFV2"}
    acl = sub(resources["WebAcl"]["Properties"]["Name"], params)
    rules = {r["Name"] for r in resources["WebAcl"]["Properties"]["Rules"]}
    assert waf == {("WebACL", acl, "Rule", rule) for rule in rules}


# ------------------------------------------------------------------ HTTP API, CloudFront, WAF

def test_the_rest_api_is_replaced_by_an_http_api_with_payload_format_1_0(packaged, resources):
    assert "RestAPI" not in resources
    assert "RestAPI" not in json.dumps(packaged["template"])
    api = resources["HttpApi"]
    assert api["Type"] == "AWS::Serverless::HttpApi"
    assert api["Properties"]["StageName"] == CONFIG["stages"][STAGE]["api_gateway_stage"]
    assert resources["APIHandlerInvokePermission"]["Properties"]["SourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}"
                   ":${HttpApi}/*"}


def test_the_http_api_is_throttled_logs_every_request_as_json_and_allows_cors(
        resources, params):
    props = resources["HttpApi"]["Properties"]
    settings = props["DefaultRouteSettings"]
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurstLimit"}
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRateLimit"}
    assert (params["ApiThrottleBurstLimit"], params["ApiThrottleRateLimit"]) == ("200", "100")

    log = props["AccessLogSettings"]
    assert log["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    fields = json.loads(log["Format"])
    assert {"requestId", "ip", "httpMethod", "routeKey", "status",
            "responseLatency"} <= set(fields)
    assert all(value.startswith("$context.") for value in fields.values())

    group = resources["ApiAccessLogGroup"]["Properties"]
    assert params["AccessLogRetentionDays"] == "90"
    assert group["RetentionInDays"] == {"Ref": "AccessLogRetentionDays"}
    assert group["KmsKeyId"] == {"Fn::GetAtt": ["ObservabilityKey", "Arn"]}
    (logs,) = [st for st in resources["ObservabilityKey"]["Properties"]["KeyPolicy"]["Statement"]
               if "logs." in json.dumps(st["Principal"])]
    allowed = sub(logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"], params)
    assert allowed.endswith(":log-group:" + sub(group["LogGroupName"], params))

    cors = props["CorsConfiguration"]
    assert cors["AllowOrigins"] == ["*"]
    assert {"authorization", "content-type"} <= set(cors["AllowHeaders"])
    assert {"GET", "POST", "PATCH", "DELETE"} <= set(cors["AllowMethods"])


def test_the_waf_limits_each_ip_and_runs_the_aws_managed_rule_groups(resources, params):
    acl = resources["WebAcl"]["Properties"]
    assert acl["Scope"] == "CLOUDFRONT" and acl["DefaultAction"] == {"Allow": {}}
    assert acl["VisibilityConfig"]["CloudWatchMetricsEnabled"] is True
    rules = {rule["Name"]: rule for rule in acl["Rules"]}
    assert len(rules) == 3
    assert len({rule["Priority"] for rule in rules.values()}) == 3
    for rule in rules.values():
        assert rule["VisibilityConfig"]["CloudWatchMetricsEnabled"] is True
        assert rule["VisibilityConfig"]["SampledRequestsEnabled"] is True

    rate = rules["RateLimitPerIp"]
    statement = rate["Statement"]["RateBasedStatement"]
    assert statement["AggregateKeyType"] == "IP" and statement["Limit"] == {"Ref": "WafRateLimit"}
    assert statement.get("EvaluationWindowSec", 300) == 300 and params["WafRateLimit"] == "2000"
    response = rate["Action"]["Block"]["CustomResponse"]
    assert response["ResponseCode"] == 429
    body = acl["CustomResponseBodies"][response["CustomResponseBodyKey"]]
    assert json.loads(body["Content"])["error"]["code"] == "too_many_requests"

    for group in ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"):
        managed = rules[group]["Statement"]["ManagedRuleGroupStatement"]
        assert (managed["VendorName"], managed["Name"]) == ("AWS", group)
        assert rules[group]["OverrideAction"] == {"None": {}}


def test_the_cloudfront_web_acl_is_made_in_us_east_1_or_given_from_there(packaged, resources):
    template = packaged["template"]
    assert "WebAclAssociation" not in resources  # an HTTP API takes no web ACL
    assert resources["WebAcl"]["Condition"] == "CreateWebAcl"
    assert template["Conditions"]["InUsEast1"] == {
        "Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}
    assert template["Conditions"]["CreateWebAcl"] == {"Fn::And": [
        {"Condition": "InUsEast1"}, {"Fn::Equals": [{"Ref": "WebAclArn"}, ""]}]}
    assert template["Parameters"]["WebAclArn"]["Default"] == ""
    rule = template["Rules"]["CloudFrontWebAclOutsideUsEast1"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AWS::Region"},
                                                                "us-east-1"]}]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [
        {"Ref": "WebAclArn"}, ""]}]}


def test_cloudfront_serves_the_http_api_stage_uncached_behind_the_web_acl(resources):
    config = resources["ApiDistribution"]["Properties"]["DistributionConfig"]
    assert config["WebACLId"] == {"Fn::If": ["CreateWebAcl", {"Fn::GetAtt": ["WebAcl", "Arn"]},
                                             {"Ref": "WebAclArn"}]}
    (origin,) = config["Origins"]
    assert origin["DomainName"] == {
        "Fn::Sub": "${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    assert origin["OriginPath"] == "/" + CONFIG["stages"][STAGE]["api_gateway_stage"]
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["TargetOriginId"] == origin["Id"]
    assert set(behaviour["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS", "PUT", "PATCH",
                                                "POST", "DELETE"}
    assert behaviour["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # disabled
    # Every viewer header but Host: API Gateway answers only to its own host name.
    assert behaviour["OriginRequestPolicyId"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"
    assert behaviour["ViewerProtocolPolicy"] in ("https-only", "redirect-to-https")


# ------------------------------------------------------------------ uploads

def test_the_uploads_bucket_invokes_the_live_alias_of_upload_events_with_a_scoped_permission(
        resources, params):
    data, data_params = data_stack()
    bucket = data["Resources"]["UploadsBucket"]["Properties"]
    bucket_name = sub(bucket["BucketName"], data_params)
    (wiring,) = bucket["NotificationConfiguration"]["LambdaConfigurations"]["Fn::If"][1]
    assert "QueueConfigurations" not in bucket["NotificationConfiguration"]
    assert wiring["Event"] == "s3:ObjectCreated:*"
    assert wiring["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "creators/"}]
    function_name = sub(resources["UploadEvents"]["Properties"]["FunctionName"], params)
    assert sub(wiring["Function"], data_params) == \
        f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}:live"

    permission = resources["UploadEventsS3Permission"]
    assert permission["Type"] == "AWS::Lambda::Permission"
    props = permission["Properties"]
    assert props["FunctionName"] == {"Ref": "UploadEvents.Alias"}
    assert props["Principal"] == "s3.amazonaws.com" and props["Action"] == "lambda:InvokeFunction"
    assert props["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert sub(props["SourceArn"], params) == f"arn:aws:s3:::{bucket_name}"
    # Chalice polls no queue for it any more.
    assert "Events" not in resources["UploadEvents"]["Properties"]


def test_a_failed_upload_event_is_retried_then_sent_to_its_dead_letter_queue(resources, params):
    config = resources["UploadEventsInvokeConfig"]
    assert config["Type"] == "AWS::Lambda::EventInvokeConfig"
    assert config["DependsOn"] == "UploadEventsAliaslive"
    props = config["Properties"]
    assert props["FunctionName"] == {"Ref": "UploadEvents"} and props["Qualifier"] == "live"
    assert props["MaximumRetryAttempts"] == 2
    destination = sub(props["DestinationConfig"]["OnFailure"]["Destination"], params)
    assert destination == f"arn:aws:sqs:us-east-1:123456789012:{ENV['UPLOAD_EVENTS_DLQ']}"
    # The functions' role may send there (the destination is written with it).
    policy = json.loads((ROOT / ".chalice" / f"policy-{STAGE}.json").read_text("utf-8"))
    (sends,) = [st for st in policy["Statement"] if st["Sid"] == "FailureDestinations"]
    assert sends["Action"] == ["sqs:SendMessage"]
    assert sends["Resource"] == [f"arn:aws:sqs:*:*:{ENV['UPLOAD_EVENTS_DLQ']}"]


# ------------------------------------------------------------------ releases

def test_every_function_is_released_as_a_canary_that_its_alarms_roll_back(packaged, resources):
    assert packaged["template"]["Parameters"]["DeploymentType"]["Default"] == \
        "Canary10Percent5Minutes"
    for fn in functions(resources):
        props = resources[fn]["Properties"]
        assert props["AutoPublishAlias"] == "live", fn
        preference = props["DeploymentPreference"]
        assert preference["Type"] == {"Ref": "DeploymentType"}, fn
        assert preference.get("Enabled", True) is True
        assert {"Ref": f"{fn}ErrorsAlarm"} in preference["Alarms"], fn
        assert {"Ref": "Api5xxAlarm"} in preference["Alarms"], fn
        for alarm in preference["Alarms"]:
            assert alarm["Ref"] in alarms(resources), (fn, alarm)


def test_the_http_api_calls_the_live_alias_on_every_route(resources):
    """Every route's integration names the alias, so a canary sees API traffic."""
    paths = resources["HttpApi"]["Properties"]["DefinitionBody"]["paths"]
    routes = 0
    for path, methods in paths.items():
        for method, operation in methods.items():
            integration = operation["x-amazon-apigateway-integration"]
            assert integration["type"] == "aws_proxy", (path, method)
            assert integration["payloadFormatVersion"] == "1.0", (path, method)
            assert integration["uri"]["Fn::Sub"][1] == {"Alias": {"Ref": "APIHandler.Alias"}}
            assert "/functions/${Alias}/invocations" in integration["uri"]["Fn::Sub"][0]
            routes += 1
    assert routes >= 40
    assert not [path for path in paths if path.startswith("/_local")]
    assert resources["APIHandlerInvokePermission"]["Properties"]["FunctionName"] == {
        "Ref": "APIHandler.Alias"}


def test_only_the_stage_must_be_given_to_deploy(packaged):
    parameters = packaged["template"]["Parameters"]
    assert "Default" not in parameters["Stage"]
    assert set(parameters["Stage"]["AllowedValues"]) == set(CONFIG["stages"]) - {"local"}
    assert [name for name, spec in parameters.items() if "Default" not in spec] == ["Stage"]


def test_the_merged_template_passes_cfn_lint(packaged):
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    assert cfn_lint.exists(), "cfn-lint is in requirements-dev.txt"
    result = subprocess.run([str(cfn_lint), str(packaged["path"])], capture_output=True,
                            text=True, timeout=300)
    print(result.stdout)  # warnings, shown with -s or on failure
    errors = [line for line in result.stdout.splitlines() if re.match(r"E\d{4} ", line)]
    assert not errors, result.stdout
    # 0: clean, 4: warnings, 8: informational; anything else (2 errors, a crash) fails.
    assert result.returncode in (0, 4, 8, 12), result.stdout + result.stderr


# ------------------------------------------------------------------ infra/rollback.sh

FAKE_AWS = '''#!{python}
"""Stands in for the AWS CLI: answers from a scenario file, logs every call."""
import json, os, sys
args = sys.argv[1:]
scenario = json.load(open(os.environ["FAKE_AWS_SCENARIO"]))
with open(os.environ["FAKE_AWS_LOG"], "a") as log:
    log.write(" ".join(args) + "\\n")
def arg(name):
    return args[args.index(name) + 1]
service, command = args[0], args[1]
if (service, command) == ("cloudformation", "list-stack-resources"):
    print("\\n".join("\\t".join(row) for row in scenario["resources"]))
elif (service, command) == ("deploy", "list-deployments"):
    kind = "succeeded" if "Succeeded" in args else "inflight"
    ids = scenario[kind].get(arg("--deployment-group-name"), [])
    print("\\t".join(ids[:1] if kind == "inflight" else ids) or "None")
elif (service, command) == ("deploy", "batch-get-deployments"):
    ids = args[args.index("--deployment-ids") + 1:args.index("--query")]
    print(json.dumps([{{"revisionType": "AppSpecContent",
                       "appSpecContent": {{"content": scenario["appspecs"][i]}}}} for i in ids]))
elif (service, command) == ("deploy", "stop-deployment"):
    print("{{}}")
elif (service, command) == ("lambda", "get-alias"):
    print(scenario["alias"][arg("--function-name")])
elif (service, command) == ("lambda", "list-versions-by-function"):
    print("\\t".join(scenario["versions"][arg("--function-name")]))
elif (service, command) == ("lambda", "update-alias"):
    print(arg("--function-version"))
else:
    sys.exit("unexpected call: " + " ".join(args))
'''


def appspec(name: str, current: str, target: str) -> str:
    return json.dumps({"version": 0.0, "Resources": [{name: {
        "Type": "AWS::Lambda::Function",
        "Properties": {"Name": name, "Alias": "live", "CurrentVersion": current,
                       "TargetVersion": target}}}]})


@pytest.fixture
def fake_aws(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    aws = bin_dir / "aws"
    aws.write_text(FAKE_AWS.format(python=sys.executable), encoding="utf-8")
    aws.chmod(aws.stat().st_mode | stat.S_IEXEC)
    scenario = {
        "resources": [
            ["APIHandler", "paidres-prod-app-APIHandler-AAA", "AWS::Lambda::Function"],
            ["APIHandlerDeploymentGroup", "dg-api", "AWS::CodeDeploy::DeploymentGroup"],
            ["PaymentEvents", "paidres-prod-app-PaymentEvents-BBB", "AWS::Lambda::Function"],
            ["PaymentEventsDeploymentGroup", "dg-pay", "AWS::CodeDeploy::DeploymentGroup"],
            ["ServerlessDeploymentApplication", "app-1", "AWS::CodeDeploy::Application"],
            ["HttpApi", "abc123", "AWS::ApiGatewayV2::Api"]],
        # APIHandler: 6 was rolled back by its canary, so 5 was live before 7.
        "succeeded": {"dg-api": ["d-1", "d-2"], "dg-pay": []},
        "inflight": {},
        "appspecs": {"d-1": appspec("paidres-prod-app-APIHandler-AAA", "4", "5"),
                     "d-2": appspec("paidres-prod-app-APIHandler-AAA", "5", "7")},
        "alias": {"paidres-prod-app-APIHandler-AAA": "7",
                  "paidres-prod-app-PaymentEvents-BBB": "3"},
        "versions": {"paidres-prod-app-APIHandler-AAA": ["1", "2", "3", "4", "5", "6", "7"],
                     "paidres-prod-app-PaymentEvents-BBB": ["1", "2", "3", "10"]},
    }

    def run(*args: str, changes: dict | None = None):
        path = tmp_path / "scenario.json"
        path.write_text(json.dumps({**scenario, **(changes or {})}), encoding="utf-8")
        log = tmp_path / "calls.log"
        log.write_text("", encoding="utf-8")
        env = {**{k: v for k, v in os.environ.items() if k != "STAGE"},
               "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
               "FAKE_AWS_SCENARIO": str(path), "FAKE_AWS_LOG": str(log),
               "PYTHON": sys.executable}
        result = subprocess.run(["bash", str(ROOT / "infra" / "rollback.sh"), *args], env=env,
                                capture_output=True, text=True, timeout=60)
        return result, log.read_text(encoding="utf-8").splitlines()

    return run


def test_rollback_is_executable():
    assert os.access(ROOT / "infra" / "rollback.sh", os.X_OK)


def test_a_dry_run_says_where_each_alias_would_go_and_changes_nothing(fake_aws):
    result, calls = fake_aws("--stage", "prod", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "APIHandler (paidres-prod-app-APIHandler-AAA): live 7 -> 5 (live before it, " \
           "per CodeDeploy) (dry run)" in result.stdout
    assert "PaymentEvents (paidres-prod-app-PaymentEvents-BBB): live 3 -> 2 (the published " \
           "version before it) (dry run)" in result.stdout
    assert calls[0].startswith("cloudformation list-stack-resources --stack-name paidres-prod-app")
    assert not [c for c in calls if "update-alias" in c or "stop-deployment" in c]


def test_a_rollback_moves_each_live_alias_to_the_version_live_before(fake_aws):
    result, calls = fake_aws("--stage", "prod")
    assert result.returncode == 0, result.stderr
    updates = [c for c in calls if c.startswith("lambda update-alias")]
    assert updates == [
        "lambda update-alias --function-name paidres-prod-app-APIHandler-AAA --name live "
        "--function-version 5 --query FunctionVersion --output text",
        "lambda update-alias --function-name paidres-prod-app-PaymentEvents-BBB --name live "
        "--function-version 2 --query FunctionVersion --output text"]


def test_one_function_to_a_named_version(fake_aws):
    result, calls = fake_aws("--stack", "custom", "--function", "APIHandler", "--to", "3")
    assert result.returncode == 0, result.stderr
    assert "APIHandler (paidres-prod-app-APIHandler-AAA): live 7 -> 3 (--to)" in result.stdout
    assert [c.split()[-5] for c in calls if "update-alias" in c] == ["3"]
    assert "PaymentEvents" not in result.stdout


def test_a_canary_in_flight_is_stopped_with_auto_rollback_instead(fake_aws):
    result, calls = fake_aws("--stage", "prod", "--function", "APIHandler",
                             changes={"inflight": {"dg-api": ["d-9"]}})
    assert result.returncode == 0, result.stderr
    assert "deploy stop-deployment --deployment-id d-9 --auto-rollback-enabled --output text" \
        in calls
    assert not [c for c in calls if "update-alias" in c]


def test_no_earlier_version_fails_and_bad_arguments_are_refused(fake_aws):
    result, calls = fake_aws("--stage", "prod", "--function", "PaymentEvents",
                             changes={"alias": {"paidres-prod-app-PaymentEvents-BBB": "1"}})
    assert result.returncode == 1
    assert "no earlier version" in result.stderr
    assert not [c for c in calls if "update-alias" in c]

    for args in ((), ("--stage", "prod", "--to", "3"), ("--stage", "prod", "--bogus"),
                 ("--stage", "prod", "--function", "Nope")):
        refused, _ = fake_aws(*args)
        assert refused.returncode == 2, (args, refused.stdout, refused.stderr)
