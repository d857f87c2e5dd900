"""The process's botocore session loads only the app's services, from plain-dict JSON: what
its clients know and where they send requests must be what botocore's own loader gives."""
from __future__ import annotations

import botocore.session
import pytest

from chalicelib import aws

REGIONS = ("us-east-1", "eu-central-1", "ap-southeast-1", "cn-north-1", "us-gov-west-1")


@pytest.fixture(scope="module")
def sessions():
    ours = botocore.session.get_session()
    ours.register_component("data_loader", aws._app_loader(None))
    return ours, botocore.session.get_session()


@pytest.mark.parametrize("name", ["endpoints", "partitions", "sdk-default-configuration",
                                  "_retry"])
def test_shared_data_files_read_as_plain_dicts_equal_botocores(sessions, name):
    ours, theirs = sessions
    assert ours.get_component("data_loader").load_data(name) == \
        theirs.get_component("data_loader").load_data(name)


@pytest.mark.parametrize("service", aws.SERVICES)
def test_each_services_models_equal_botocores(sessions, service):
    ours, theirs = sessions
    mine, reference = ours.get_component("data_loader"), theirs.get_component("data_loader")
    for type_name in ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2"):
        if service not in reference.list_available_services(type_name):
            continue
        assert service in mine.list_available_services(type_name)
        assert mine.load_service_model(service, type_name) == \
            reference.load_service_model(service, type_name)


@pytest.mark.parametrize("service", aws.SERVICES)
def test_clients_resolve_the_same_endpoints_in_every_partition(sessions, service):
    ours, theirs = sessions
    for region in REGIONS:
        mine = ours.create_client(service, region_name=region, aws_access_key_id="k",
                                  aws_secret_access_key="s")
        reference = theirs.create_client(service, region_name=region, aws_access_key_id="k",
                                         aws_secret_access_key="s")
        assert (mine.meta.endpoint_url, mine.meta.partition, mine.meta.region_name) == \
            (reference.meta.endpoint_url, reference.meta.partition, reference.meta.region_name)
        assert mine.meta.service_model.operation_names == \
            reference.meta.service_model.operation_names


def test_only_the_apps_services_are_listed(sessions):
    ours, _ = sessions
    assert ours.get_component("data_loader").list_available_services("service-2") == \
        sorted(aws.SERVICES)


def test_a_client_for_a_service_the_app_does_not_use_is_refused_by_name():
    with pytest.raises(ValueError, match="'ec2' is not in chalicelib.aws.SERVICES"):
        aws.client("ec2")


def presigned_get(region: str, endpoint_url: str | None) -> str:
    client = aws.botocore_session().create_client(
        "s3", region_name=region, endpoint_url=endpoint_url, aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret", config=aws.client_config("s3", endpoint_url))
    return client.generate_presigned_url("get_object", Params={"Bucket": "paidres-prod-uploads",
                                                               "Key": "a/b.pdf"}, ExpiresIn=60)


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-1", "ap-southeast-1"])
def test_on_aws_s3_links_are_sigv4_on_the_regional_virtual_hosted_endpoint(region):
    url = presigned_get(region, None)
    assert url.startswith(f"https://paidres-prod-uploads.s3.{region}.amazonaws.com/a/b.pdf?")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    assert f"%2F{region}%2Fs3%2Faws4_request" in url


def test_against_a_local_endpoint_s3_links_are_path_style_and_sigv4():
    url = presigned_get("us-east-1", "http://127.0.0.1:5000")
    assert url.startswith("http://127.0.0.1:5000/paidres-prod-uploads/a/b.pdf?")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
