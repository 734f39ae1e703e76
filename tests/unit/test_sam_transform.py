"""The offline SAM transform wrapper (the transform itself runs in the tools venv: `make transform`)."""

from __future__ import annotations

from gatekeeper_ops import sam_transform


def test_local_code_paths_become_packaged_s3_locations():
    template = {
        "Resources": {
            "Fn": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "functions/x/"}},
            "Layer": {"Type": "AWS::Serverless::LayerVersion", "Properties": {"ContentUri": "layers/core/"}},
            "Packaged": {"Type": "AWS::Serverless::Function", "Properties": {"CodeUri": "s3://b/k.zip"}},
            "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "t"}},
        }
    }
    resources = sam_transform._as_packaged(template)["Resources"]
    assert resources["Fn"]["Properties"]["CodeUri"] == "s3://packaged-code/Fn.zip"
    assert resources["Layer"]["Properties"]["ContentUri"] == "s3://packaged-code/Layer.zip"
    assert resources["Packaged"]["Properties"]["CodeUri"] == "s3://b/k.zip"
    assert resources["Table"]["Properties"] == {"TableName": "t"}


def test_the_managed_policy_map_is_static(capsys):
    assert "AWSLambdaBasicExecutionRole" in sam_transform.StaticManagedPolicyLoader().load()
    assert sam_transform.main([]) == 2
    assert "usage:" in capsys.readouterr().err
