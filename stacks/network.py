"""Optional private network (`vpc: true`): the functions in isolated subnets that have no route
to the internet, reaching AWS only through VPC endpoints for the services they call.

Off by default: every call is already authorized by the function's role and carried over TLS,
and a VPC adds endpoint costs. Reviewers who require functions inside a VPC (NIST 800-53
SC-7, HIPAA's "Lambda inside VPC") switch it on.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.function import Placement

# Interface endpoints for every service a function calls (S3 and DynamoDB are gateways).
INTERFACE_ENDPOINTS = {
    "Transcribe": ec2.InterfaceVpcEndpointAwsService.TRANSCRIBE,
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Events": ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
    "XRay": ec2.InterfaceVpcEndpointAwsService.XRAY,
}
FLOW_LOG_PREFIX = "vpc-flow-logs/"
AVAILABILITY_ZONES = 2  # Lambda wants at least two for availability


class Network(Construct):
    """Exposes `vpc`, `security_group`, `endpoint_security_group`, `placement`."""

    def __init__(self, scope: Construct, construct_id: str, *, flow_log_bucket: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=AVAILABILITY_ZONES,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                )
            ],
            # CDK would close the default security group with a custom-resource Lambda (more
            # code, another role); nothing here uses that group (acknowledged in compliance).
            restrict_default_security_group=False,
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDb": ec2.GatewayVpcEndpointOptions(
                    service=ec2.GatewayVpcEndpointAwsService.DYNAMODB
                ),
            },
            flow_logs={
                "ToAccessLogBucket": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_s3(flow_log_bucket, FLOW_LOG_PREFIX),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        # Isolated subnets have no route out, so "all outbound" reaches only the endpoints.
        self.security_group = ec2.SecurityGroup(
            self,
            "FunctionSecurityGroup",
            vpc=self.vpc,
            description="Pipeline functions: outbound to the VPC endpoints only",
            allow_all_outbound=True,
        )
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="Interface endpoints: HTTPS from the pipeline functions only",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(
            self.security_group, ec2.Port.tcp(443), "HTTPS from the pipeline functions"
        )
        subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        for name, service in INTERFACE_ENDPOINTS.items():
            self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=subnets,
                security_groups=[self.endpoint_security_group],
                private_dns_enabled=True,
                open=False,
            )
        self.placement = Placement(
            vpc=self.vpc, subnets=subnets, security_group=self.security_group
        )
