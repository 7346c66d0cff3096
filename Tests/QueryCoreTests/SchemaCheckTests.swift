import QueryCore
import XCTest

final class SchemaCheckTests: XCTestCase {
    let schema: JSONValue = [
        "type": "object",
        "properties": [
            "city": ["type": "string", "minLength": 2],
            "days": ["type": "integer", "minimum": 1, "maximum": 14],
            "unit": ["type": "string", "enum": ["C", "F"]],
            "tags": ["type": "array", "items": ["type": "string"], "maxItems": 2],
            "where": ["type": "object", "properties": ["lat": ["type": "number"]], "additionalProperties": false],
        ],
        "required": ["city", "days"],
        "additionalProperties": false,
    ]

    func testValidArgumentsHaveNoViolations() {
        XCTAssertEqual(
            SchemaCheck.violations(
                of: ["city": "Oslo", "days": 3, "unit": "C", "tags": ["a"], "where": ["lat": 59.9]], against: schema),
            [])
        XCTAssertEqual(
            SchemaCheck.violations(of: ["city": "Oslo", "days": 3.0], against: schema), [], "3.0 is an integer")
    }

    func testEachViolationHasItsPath() {
        let v = SchemaCheck.violations(
            of: [
                "city": "O", "days": "3", "unit": "K", "tags": ["a", 2, "c"], "where": ["lat": "x", "lon": 1],
                "extra": true,
            ],
            against: schema
        ).map(\.description)
        XCTAssertEqual(
            v,
            [
                "$.city: 1 character, fewer than minLength 2",
                "$.days: expected integer, got string \"3\"",
                "$.unit: \"K\" is not one of \"C\", \"F\"",
                "$.tags: 3 items, more than maxItems 2",
                "$.tags[1]: expected string, got integer 2",
                "$.where.lat: expected number, got string \"x\"",
                "$.where.lon: property \"lon\" is not allowed (additionalProperties is false)",
                "$.extra: property \"extra\" is not allowed (additionalProperties is false)",
            ])
        XCTAssertEqual(
            SchemaCheck.violations(of: ["days": 20], against: schema).map(\.description),
            [
                "$: required property \"city\" is missing", "$.days: 20 is above the maximum 14",
            ])
    }
}
