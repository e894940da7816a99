"""Test helper for a moto_server started with INITIAL_NO_AUTH_ACTION_COUNT=3 (signature checking on after
three free requests).

  moto_bucket.py setup PORT                       -> creates an IAM user with s3:* and prints "AK SK"
  moto_bucket.py put PORT AK SK BUCKET NAME=PATH… -> creates the bucket if needed and uploads the files
"""
import json
import sys

import boto3
from botocore.config import Config


def endpoint(port):
    return f"http://127.0.0.1:{port}"


def setup(port):
    iam = boto3.client("iam", endpoint_url=endpoint(port), region_name="us-east-1",
                       aws_access_key_id="setup", aws_secret_access_key="setup")
    iam.create_user(UserName="rdbcat-tests")
    key = iam.create_access_key(UserName="rdbcat-tests")["AccessKey"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="rdbcat-tests", PolicyName="s3-all", PolicyDocument=json.dumps(policy))
    print(key["AccessKeyId"], key["SecretAccessKey"])


def put(port, ak, sk, bucket, specs):
    s3 = boto3.client("s3", endpoint_url=endpoint(port), region_name="us-east-1",
                      aws_access_key_id=ak, aws_secret_access_key=sk,
                      config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
    if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
        s3.create_bucket(Bucket=bucket)
    for spec in specs:
        name, path = spec.split("=", 1)
        with open(path, "rb") as f:
            s3.put_object(Bucket=bucket, Key=name, Body=f.read())
    print("ok")


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup(sys.argv[2])
    elif sys.argv[1] == "put":
        put(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])
    else:
        sys.exit("usage: moto_bucket.py setup PORT | put PORT AK SK BUCKET NAME=PATH...")
